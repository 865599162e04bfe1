import GatehouseChecks
import GatehouseCore
import ArgumentParser
import Foundation
import GatehouseDoctor

/// `gatehouse doctor …`: diagnose any 401/403/429, whoever sent it.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Pinpoint why a request was denied: responses, HAR files, tokens, live probes, nginx/Apache configs, logs.",
        subcommands: [
            DoctorResponseCommand.self, DoctorTokenCommand.self, DoctorProbeCommand.self,
            DoctorNginxCommand.self, DoctorApacheCommand.self, DoctorLogsCommand.self,
        ]
    )
}

/// Failure of a doctor command, printed as-is (it already names what was wrong and where).
struct DoctorCLIError: Error, CustomStringConvertible {
    var description: String
}

/// Reads a file argument, `-` meaning standard input.
func readInput(_ path: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw DoctorCLIError(description: "cannot read '\(path)': no such file or not readable")
    }
    return data
}

func loadKnowledge() throws -> KnowledgeBase {
    do { return try KnowledgeBase.standard() } catch { throw DoctorCLIError(description: "knowledge base: \(error)") }
}

/// `gatehouse doctor response FILE|-`.
struct DoctorResponseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "response",
        abstract: "Diagnose a saved HTTP response (status line, headers, blank line, body) or every 401/403/429 entry of a HAR file."
    )

    @Argument(help: "The response or HAR file; '-' reads standard input.")
    var file: String

    @Option(help: "The request URL, when the saved response does not say it (its host is evidence of the system).")
    var url: String?

    @Option(help: "Whether the request carried credentials (token, key, cookie, password): 'sent' or 'none'.")
    var credentials: String?

    @Flag(help: "Print the doctor's JSON contract (an array, one object per entry, for HAR input).")
    var json = false

    func run() throws {
        let knowledge = try loadKnowledge()
        let doctor = ResponseDoctor(knowledge: knowledge)
        let result: (results: [(ObservedResponse, Diagnosis)], isHAR: Bool)
        let sent: Bool?
        switch credentials?.lowercased() {
        case nil: sent = nil
        case "sent", "yes", "true": sent = true
        case "none", "no", "false": sent = false
        case let other?: throw DoctorCLIError(description: "--credentials must be 'sent' or 'none', not '\(other)'")
        }
        do { result = try doctor.diagnose(data: try readInput(file), source: file, url: url, credentialsSent: sent) } catch let e
            as ResponseParseError
        {
            throw DoctorCLIError(description: e.description)
        }
        if json {
            print(Diagnosis.json(result.results.map(\.1), asArray: result.isHAR))
            return
        }
        if result.results.isEmpty {
            print("No 401, 403 or 429 responses in \(file): nothing was denied.")
            return
        }
        for (index, (response, diagnosis)) in result.results.enumerated() {
            if result.isHAR { print("\(index > 0 ? "\n" : "")Entry \(index + 1) of \(result.results.count)") }
            print(Report.render(diagnosis, response: response, knowledge: knowledge))
        }
    }
}
