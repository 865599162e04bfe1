import ArgumentParser
import GatehouseCore

struct ReasonsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reasons",
        abstract: "List the reason codes Gatehouse can send, or explain one."
    )

    @Argument(help: "A reason code, e.g. insufficient_scope.") var code: String?
    @Flag(help: "Print docs/reasons.md.") var markdown = false

    func run() throws {
        if markdown {
            print(ReasonsMarkdown.render(), terminator: "")
            return
        }
        if let code {
            guard let r = ReasonCatalogue.entry(ReasonCode(code)) else {
                throw ValidationError("unknown reason code \"\(code)\"; `gatehouse reasons` lists them all")
            }
            print("\(r.code) (\(r.status)): \(r.title)\n\n\(r.meaning)\n\nTypical fix: \(r.fix)")
            return
        }
        for r in ReasonCatalogue.all { print("\(r.status)  \(r.code)  \(r.title)") }
    }
}
