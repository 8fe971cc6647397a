import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// What `/metrics` reports, through swift-metrics into a Prometheus registry of this server's own
/// (not the process-wide `MetricsSystem`, so several servers in one process keep their figures apart).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    init() { factory = PrometheusMetricsFactory(registry: registry) }

    /// Requests answered, by route and status.
    func request(route: String, status: Int) {
        Counter(label: "chatterstream_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory).increment()
        if status >= 400 {
            Counter(label: "chatterstream_errors_total", dimensions: [("route", route), ("status", String(status))], factory: factory).increment()
        }
    }

    /// Syntheses waiting in the engine's queue.
    func queueDepth(_ depth: Int) {
        Gauge(label: "chatterstream_queue_depth", factory: factory).record(depth)
    }

    /// One finished synthesis: time to its first audio, its real-time factor (over the audio
    /// delivered) and its speed in speech tokens per second. `speed` is the playback speed the audio
    /// was changed by after the model: the model rendered `audioSeconds × speed` seconds of tokens.
    func synthesis(timeToFirstByte: Duration, elapsed: Duration, audioSeconds: Double, speed: Double = 1, chunks: Int) {
        Timer(label: "chatterstream_time_to_first_byte_seconds", factory: factory).recordNanoseconds(Self.nanoseconds(timeToFirstByte))
        let seconds = Double(Self.nanoseconds(elapsed)) / 1e9
        if audioSeconds > 0 {
            Recorder(label: "chatterstream_real_time_factor", factory: factory).record(seconds / audioSeconds)
            // 25 speech tokens make one second of the model's audio (S3 tokens at 25 Hz).
            Recorder(label: "chatterstream_speech_tokens_per_second", factory: factory).record(Self.speechTokens(audioSeconds: audioSeconds, speed: speed) / max(seconds, 1e-9))
        }
        Counter(label: "chatterstream_audio_seconds_total", factory: factory).increment(by: Int(audioSeconds.rounded()))
    }

    func text() -> String { registry.emitToString() }

    /// Speech tokens behind `audioSeconds` of audio delivered at playback `speed`.
    static func speechTokens(audioSeconds: Double, speed: Double) -> Double { audioSeconds * speed * 25 }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
