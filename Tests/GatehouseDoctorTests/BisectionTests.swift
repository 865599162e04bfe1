import GatehouseDoctor
import Testing

@Suite("delta debugging")
struct BisectionTests {
    @Test("finds the single item that triggers the behaviour")
    func single() async {
        let out = await DeltaDebugger<Int>(budget: 100).minimize(Array(0..<16)) { $0.contains(11) }
        #expect(out.minimal == [11])
        #expect(out.conclusive)
    }

    @Test("finds a pair that only triggers together")
    func pair() async {
        let out = await DeltaDebugger<Int>(budget: 200).minimize(Array(0..<12)) { $0.contains(2) && $0.contains(9) }
        #expect(out.minimal == [2, 9])
    }

    @Test("stops at the budget and says so")
    func budget() async {
        let out = await DeltaDebugger<Int>(budget: 2).minimize(Array(0..<64)) { $0.contains(40) }
        #expect(!out.conclusive)
        #expect(out.tests == 2)
    }
}
