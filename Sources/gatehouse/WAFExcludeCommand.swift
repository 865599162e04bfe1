import ArgumentParser
import Foundation
import GatehouseSecLang
import GatehouseStore

/// `gatehouse waf exclude REQUEST_ID`: a scoped Core Rule Set exclusion for a false positive
/// seen in the call log.
struct WAFExcludeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exclude",
        abstract: "Propose a scoped exclusion for a Core Rule Set false positive in the call log.",
        discussion: """
            Reads the call-log record of a request the `waf` policy's Core Rule Set blocked, and prints
            a SecLang rule that removes each rule that fired from the one variable it matched, on the
            request's path only (ctl:ruleRemoveTargetById in phase 1). Add it to a file the policy's
            `crs.include` lists, after review. With --config, the proposal is loaded with that policy's
            rule files to check that it reads.
            """)

    @Argument(help: "The request id (X-Request-Id of the blocked response).") var requestID: String
    @Option(help: "The id of the rule proposed.") var id = 10_000
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let store = try storeOptions.callLog()
        guard let record = try store.calls(requestID: requestID).first else {
            printError("no call-log record with request id \(requestID) in \(store.logLocation)")
            throw ExitCode(1)
        }
        guard record.reason == "waf_blocked", let detail = record.detail else {
            printError(
                "request \(requestID) was not blocked by the WAF (status \(record.status), reason \(record.reason ?? "none")): nothing to exclude"
            )
            throw ExitCode(1)
        }
        let findings = ExclusionProposal.findings(inLogDetail: detail)
        guard !findings.isEmpty else {
            printError(
                "request \(requestID) was blocked by the built-in detectors, not the Core Rule Set: add an entry to the policy's `exclusions:` (rule, field, routes) as docs/waf.md describes. The log says: \(detail)"
            )
            throw ExitCode(1)
        }
        let path = String(record.path.prefix { $0 != "?" })
        let proposal = ExclusionProposal.propose(
            findings: findings, path: path, method: record.method, requestID: requestID, firstID: id)
        for w in proposal.warnings { printError("warning: \(w)") }
        guard !proposal.text.isEmpty else { throw ExitCode(1) }
        print(proposal.text, terminator: "")
        if storeOptions.config != nil, let policy = record.decidingCheck { try verify(proposal, policy: policy) }
    }

    /// Loads the proposal after the policy's own rule files: it must read.
    func verify(_ proposal: ExclusionProposal, policy: String) throws {
        guard let file = storeOptions.config else { return }
        let (found, baseDirectory) = try crsPolicy(in: file, named: policy)
        guard let check = found else {
            printError("note: \(file) has no waf policy \(policy) with a crs block; the proposal was not checked against its rules")
            return
        }
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-exclusion-\(getpid()).conf")
        try proposal.text.write(to: temp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: temp) }
        var settings = check.settings
        settings.include.append(temp.path)
        do {
            _ = try settings.load(baseDirectory: baseDirectory)
            printError("checked: the proposal loads after policy \(policy)'s rule files")
        } catch {
            printError("the proposal does not load after policy \(policy)'s rule files: \(error.description)")
            throw ExitCode(1)
        }
    }
}
