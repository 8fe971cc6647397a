import Foundation

/// Where the model store talks to and caches into, resolved from the same environment variables the
/// Python `huggingface_hub` client reads, so one set of settings serves both.
///
/// The environment is a plain dictionary so tests (and embedding apps) never mutate the process
/// environment.
public struct HubSettings: Sendable, Equatable {
    /// `HF_HOME`; default `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
    public var home: URL
    /// `HF_ENDPOINT` without a trailing slash; default `https://huggingface.co`.
    public var endpoint: String
    /// `HF_TOKEN` (or the legacy `HUGGING_FACE_HUB_TOKEN`, or the token file `huggingface-cli login`
    /// writes at `HF_TOKEN_PATH` / `$HF_HOME/token`), sent as `Authorization: Bearer …`.
    public var token: String?
    /// `HF_HUB_OFFLINE` set to 1/true/yes/on: never touch the network.
    public var offline: Bool

    public static let defaultEndpoint = "https://huggingface.co"

    public init(home: URL, endpoint: String = HubSettings.defaultEndpoint, token: String? = nil, offline: Bool = false) {
        self.home = home
        self.endpoint = Self.trimmingTrailingSlashes(endpoint)
        self.token = token
        self.offline = offline
    }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
            return raw
        }
        let userHome = value("HOME").map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        func expandingTilde(_ path: String) -> URL {
            if path == "~" { return userHome }
            if path.hasPrefix("~/") { return userHome.appendingPathComponent(String(path.dropFirst(2)), isDirectory: true) }
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        let home: URL
        if let hfHome = value("HF_HOME") {
            home = expandingTilde(hfHome)
        } else if let xdg = value("XDG_CACHE_HOME") {
            home = expandingTilde(xdg).appendingPathComponent("huggingface", isDirectory: true)
        } else {
            home = userHome.appendingPathComponent(".cache/huggingface", isDirectory: true)
        }
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let tokenFile = value("HF_TOKEN_PATH").map(expandingTilde) ?? home.appendingPathComponent("token")
            token = (try? String(contentsOf: tokenFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if token?.isEmpty == true { token = nil }
        }
        let offline = value("HF_HUB_OFFLINE").map { ["1", "on", "yes", "true"].contains($0.lowercased()) } ?? false
        self.init(home: home, endpoint: value("HF_ENDPOINT") ?? Self.defaultEndpoint, token: token, offline: offline)
    }

    /// Root of everything this project caches: `$HF_HOME/chatterstream`.
    public var cacheRoot: URL { home.appendingPathComponent("chatterstream", isDirectory: true) }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, the layout `huggingface_hub` downloads from
    /// (the revision is percent-encoded whole, so `refs/pr/1` stays one path segment).
    public func resolveURL(repository: String, revision: String, file: String) -> URL? {
        let revisionSegment = Self.percentEncoded(revision)
        let filePath = file.split(separator: "/").map { Self.percentEncoded(String($0)) }.joined(separator: "/")
        let repoPath = repository.split(separator: "/").map { Self.percentEncoded(String($0)) }.joined(separator: "/")
        guard let url = URL(string: "\(endpoint)/\(repoPath)/resolve/\(revisionSegment)/\(filePath)"),
              let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil
        else { return nil }
        return url
    }

    private static let unreserved = CharacterSet(charactersIn:
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private static func percentEncoded(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: unreserved) ?? segment
    }

    private static func trimmingTrailingSlashes(_ string: String) -> String {
        var trimmed = string.trimmingCharacters(in: .whitespacesAndNewlines)
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }
}
