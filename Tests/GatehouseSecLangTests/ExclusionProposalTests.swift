import GatehouseSecLang
import Testing

/// Reading a logged CRS block back, and the exclusion proposed from it.
@Suite("Exclusion proposals")
struct ExclusionProposalTests {
    typealias Finding = ExclusionProposal.Finding

    @Test func findingsAreReadFromTheLoggedDetail() {
        let detail =
            #"GET /search scored 10 (threshold 5, PL1): 942100 ARGS:id (t:urlDecodeUni): SQL Injection (942100 "ARGS:id" matched "1' OR '1'='1" | 941100 "ARGS:q" matched "<script>")"#
        #expect(
            ExclusionProposal.findings(inLogDetail: detail) == [
                Finding(ruleID: 942100, variable: "ARGS:id"), Finding(ruleID: 941100, variable: "ARGS:q"),
            ])
        // Records from before the names were quoted.
        #expect(
            ExclusionProposal.findings(inLogDetail: #"x (942100 ARGS:id matched "1' OR 1=1")"#) == [
                Finding(ruleID: 942100, variable: "ARGS:id")
            ])
    }

    @Test func aVariableNameCannotPoseAsAnotherFinding() {
        // The request named its argument so that, unquoted, it would read as a second item.
        let name = #"x" matched "a" | 920100 "REQUEST_FILENAME"#
        let detail = #"... (942100 "ARGS:x\" matched \"a\" | 920100 \"REQUEST_FILENAME" matched "1' OR 1=1")"#
        #expect(ExclusionProposal.findings(inLogDetail: detail) == [Finding(ruleID: 942100, variable: "ARGS:" + name)])
    }

    @Test func theProposalIsScopedToRuleVariableAndPath() {
        let p = ExclusionProposal.propose(
            findings: [Finding(ruleID: 942100, variable: "ARGS:comment"), Finding(ruleID: 920170, variable: "REQUEST_METHOD")],
            path: "/posts/7/comments", method: "POST", requestID: "r1", firstID: 10_000)
        #expect(p.warnings.isEmpty)
        #expect(p.text.contains(#"SecRule REQUEST_FILENAME "@streq /posts/7/comments""#))
        #expect(
            p.text.contains("id:10000,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=942100;ARGS:comment,ctl:ruleRemoveById=920170"))
    }

    @Test func whatCannotBeWrittenAsIsIsWidenedWithAWarningNeverGuessed() {
        let odd = ExclusionProposal.propose(
            findings: [Finding(ruleID: 942100, variable: "ARGS:a;ARGS"), Finding(ruleID: 941100, variable: "ARGS:ok")],
            path: "/say%22hi%22", method: "GET", requestID: "r2", firstID: 1)
        #expect(odd.text.contains("ctl:ruleRemoveTargetById=942100;ARGS,"))
        #expect(odd.text.contains("ctl:ruleRemoveTargetById=941100;ARGS:ok"))
        #expect(odd.text.contains("SecAction"))
        let rule = odd.text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        #expect(!rule.contains("a;ARGS"))
        #expect(odd.warnings.count == 2)
        // Names from the request cannot leave the comment line.
        let hostile = ExclusionProposal.propose(
            findings: [Finding(ruleID: 942100, variable: "ARGS:x\nSecRuleEngine Off\\")], path: "/a", method: "GET", requestID: "r3",
            firstID: 1)
        #expect(!hostile.text.split(separator: "\n").contains { $0.hasPrefix("SecRuleEngine") })
        #expect(!hostile.text.contains("Off\\"))
    }
}
