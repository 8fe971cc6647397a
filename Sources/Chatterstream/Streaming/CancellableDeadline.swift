import Dispatch

/// Runs an action once at a deadline unless cancelled first, and costs nothing once cancelled: the
/// request's wall-time limit and the server's write watchdog.
///
/// Why not a sleeping `Task`: a cancelled `Task.sleep` keeps its timer in the runtime (~770 bytes,
/// measured) until the instant it was given, so a 900 s wall-time limit made every finished request
/// hold memory for 15 minutes (the soak's heap crept 1.2 KB per utterance), and a 60 s write
/// watchdog armed per chunk held one per chunk written in the last minute. A cancelled Dispatch
/// timer source is released at once.
public final class CancellableDeadline: @unchecked Sendable {
    // @unchecked: the only state is the timer source, whose `cancel` is safe from any thread.
    private let timer: any DispatchSourceTimer

    public init(after seconds: Double, _ action: @escaping @Sendable () -> Void) {
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + seconds)
        timer.setEventHandler(handler: action)
        timer.resume()
    }

    public convenience init(after duration: Duration, _ action: @escaping @Sendable () -> Void) {
        let parts = duration.components
        self.init(after: Double(parts.seconds) + Double(parts.attoseconds) / 1e18, action)
    }

    /// Stops the deadline; the action never runs after this returns unless it had already begun.
    public func cancel() { timer.cancel() }
}
