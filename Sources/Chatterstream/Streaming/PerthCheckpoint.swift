import Foundation

/// Where the Perth watermarker's checkpoint (`perth_net_250000.pth.tar`, shipped in the
/// resemble-perth 1.0.1 wheel, MIT) is looked for: `CHATTERSTREAM_PERTH_CHECKPOINT`, then
/// `$HF_HOME/chatterstream/perth/`, then `.cache/perth/` under the working directory (where
/// tools/perth/fetch-checkpoint.sh puts it).
enum PerthCheckpoint {
    static let fileName = "perth_net_250000.pth.tar"

    static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var urls: [URL] = []
        if let explicit = environment["CHATTERSTREAM_PERTH_CHECKPOINT"], !explicit.isEmpty {
            urls.append(URL(fileURLWithPath: explicit))
        }
        urls.append(HubSettings(environment: environment).cacheRoot.appendingPathComponent("perth/\(fileName)"))
        urls.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".cache/perth/\(fileName)"))
        return urls
    }

    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        candidates(environment: environment).first { FileManager.default.fileExists(atPath: $0.path) }
    }
}
