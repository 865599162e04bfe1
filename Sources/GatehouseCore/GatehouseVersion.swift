/// The version `gatehouse version` prints and cluster nodes report.
public enum GatehouseVersion {
    public static let string = "0.1.0"
}
