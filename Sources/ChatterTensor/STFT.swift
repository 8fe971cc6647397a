import Foundation

/// How `stft` extends the signal by n_fft/2 on each side when `center` is set.
public enum STFTPadMode: Sendable {
    /// Mirror without repeating the edge sample (`x[1], x[0] | x[0], x[1]` … is `x[2], x[1] | x[0]`), as
    /// torch's default "reflect".
    case reflect
    /// Zeros.
    case constant
}

/// The window as it multiplies each n_fft-sample frame: `window` (or ones when nil) of `winLength`
/// samples, zero-padded equally on both sides to n_fft as torch does (the extra sample of an odd
/// difference goes to the right).
private func frameWindow(_ window: Tensor?, winLength: Int, nFFT: Int) -> [Float] {
    precondition(winLength >= 1 && winLength <= nFFT, "win_length \(winLength) must be in 1...n_fft (\(nFFT))")
    var values = [Float](repeating: 1, count: winLength)
    if let window {
        precondition(window.rank == 1 && window.shape[0] == winLength,
                      "window must be 1-D with win_length (\(winLength)) samples, got \(window.shape)")
        values = window.scalars()
    }
    var padded = [Float](repeating: 0, count: nFFT)
    let left = (nFFT - winLength) / 2
    for i in 0..<winLength { padded[left + i] = values[i] }
    return padded
}

/// The short-time Fourier transform of `signal`, matching `torch.stft(..., return_complex=True)`.
///
/// - Parameters:
///   - signal: `[T]` or `[B, T]`.
///   - hopLength: defaults to n_fft / 4; `winLength` defaults to n_fft; `window` to rectangular.
///   - center: pad n_fft/2 samples on both sides with `padMode` so frame t is centred on sample t·hop.
///   - normalized: scale by 1/√n_fft.
///   - onesided: keep only the n_fft/2+1 non-negative frequencies.
/// - Returns: `[bins, frames, 2]` (or `[B, bins, frames, 2]`): complex values as a trailing (re, im)
///   axis, the layout of `torch.view_as_real(torch.stft(...))`.
public func stft(_ signal: Tensor, nFFT: Int, hopLength: Int? = nil, winLength: Int? = nil, window: Tensor? = nil,
                 center: Bool = true, padMode: STFTPadMode = .reflect, normalized: Bool = false,
                 onesided: Bool = true) -> Tensor {
    precondition(signal.rank == 1 || signal.rank == 2, "stft expects a signal [T] or [B, T], got \(signal.shape)")
    precondition(nFFT >= 1, "n_fft must be positive, got \(nFFT)")
    let hop = hopLength ?? max(1, nFFT / 4)
    precondition(hop >= 1, "hop_length must be positive, got \(hop)")
    let windowValues = frameWindow(window, winLength: winLength ?? nFFT, nFFT: nFFT)
    let batch = signal.rank == 2 ? signal.shape[0] : 1
    let length = signal.shape[signal.rank - 1]
    let pad = center ? nFFT / 2 : 0
    if center && padMode == .reflect {
        precondition(pad < length, "reflect padding of \(pad) needs a signal longer than \(pad) samples, got \(length)")
    }
    let paddedLength = length + 2 * pad
    precondition(paddedLength >= nFFT, "signal of \(length) samples (\(paddedLength) padded) is shorter than n_fft \(nFFT)")
    let frames = 1 + (paddedLength - nFFT) / hop
    let bins = onesided ? nFFT / 2 + 1 : nFFT
    let scale: Float = normalized ? 1 / Float(Double(nFFT).squareRoot()) : 1

    // Padding once per row keeps the per-frame loop a plain strided read.
    let padded = Tensor(zeros: [batch, paddedLength])
    signal.contiguous().withUnsafeFloats { source in
        padded.withUnsafeMutableFloats { destination in
            for b in 0..<batch {
                let row = source.baseAddress! + b * length, out = destination.baseAddress! + b * paddedLength
                (out + pad).update(from: row, count: length)
                if padMode == .reflect {
                    for i in 0..<pad {
                        out[pad - 1 - i] = row[i + 1]
                        out[pad + length + i] = row[length - 2 - i]
                    }
                }
            }
        }
    }

    let output = Tensor(zeros: (signal.rank == 2 ? [batch] : []) + [bins, frames, 2])
    let realPlan = RealFFTPlan.shared(nFFT)
    let complexPlan = onesided ? nil : FFTPlan.shared(nFFT)
    padded.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let src = source.baseAddress!, dst = destination.baseAddress!
            windowValues.withUnsafeBufferPointer { w in
                let w = w.baseAddress!
                ThreadPool.shared.parallelFor(batch * frames, minimumChunk: max(1, 16_384 / nFFT)) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * nFFT + 2) { scratch in
                        let frame = scratch.baseAddress!, spectrum = frame + 2 * nFFT
                        for job in range {
                            let b = job / frames, t = job % frames
                            let start = src + b * paddedLength + t * hop
                            if let complexPlan {
                                for j in 0..<nFFT { frame[2 * j] = start[j] * w[j]; frame[2 * j + 1] = 0 }
                                complexPlan.transform(frame, spectrum)
                            } else {
                                for j in 0..<nFFT { frame[j] = start[j] * w[j] }
                                realPlan.forward(frame, spectrum)
                            }
                            let out = dst + 2 * (b * bins * frames + t)
                            for f in 0..<bins {
                                out[2 * f * frames] = spectrum[2 * f] * scale
                                out[2 * f * frames + 1] = spectrum[2 * f + 1] * scale
                            }
                        }
                    }
                }
            }
        }
    }
    return output
}

/// The inverse short-time Fourier transform, matching `torch.istft` (real output).
///
/// Each frame is inverted with a real inverse FFT (so the imaginary parts of the zero and Nyquist
/// bins are ignored; a two-sided spectrum contributes only its first n_fft/2+1 bins, as in torch),
/// multiplied by the window, overlap-added, and divided by the overlap-added squared window. That
/// envelope must be nonzero over the kept samples (the NOLA condition); a window that violates it is
/// a programmer error, as in torch.
///
/// - Parameters:
///   - spectrum: `[bins, frames, 2]` or `[B, bins, frames, 2]` (trailing (re, im) axis).
///   - onesided: defaults to `bins != nFFT`.
///   - length: trim (or zero-pad) the output to this many samples; by default n_fft/2 is trimmed
///     from both ends when `center` is set.
/// - Returns: `[T]` or `[B, T]`.
public func istft(_ spectrum: Tensor, nFFT: Int, hopLength: Int? = nil, winLength: Int? = nil, window: Tensor? = nil,
                  center: Bool = true, normalized: Bool = false, onesided: Bool? = nil, length: Int? = nil) -> Tensor {
    precondition((spectrum.rank == 3 || spectrum.rank == 4) && spectrum.shape[spectrum.rank - 1] == 2,
                 "istft expects a spectrum [bins, frames, 2] or [B, bins, frames, 2], got \(spectrum.shape)")
    let hop = hopLength ?? max(1, nFFT / 4)
    precondition(hop >= 1 && nFFT >= 1, "n_fft (\(nFFT)) and hop_length (\(hop)) must be positive")
    let windowValues = frameWindow(window, winLength: winLength ?? nFFT, nFFT: nFFT)
    let batched = spectrum.rank == 4
    let batch = batched ? spectrum.shape[0] : 1
    let bins = spectrum.shape[spectrum.rank - 3], frames = spectrum.shape[spectrum.rank - 2]
    let isOnesided = onesided ?? (bins != nFFT)
    let keptBins = nFFT / 2 + 1
    precondition(isOnesided ? bins == keptBins : bins == nFFT,
                 "istft: \(bins) frequency bins do not fit n_fft \(nFFT) (\(isOnesided ? "one" : "two")-sided)")
    precondition(frames >= 1, "istft needs at least one frame")
    let fullLength = nFFT + hop * (frames - 1)
    let start = center ? nFFT / 2 : 0
    let end = length.map { start + $0 } ?? (center ? fullLength - nFFT / 2 : fullLength)
    precondition(end >= start, "istft: output length \(end - start) is negative")
    let kept = min(end, fullLength)
    let outputLength = end - start

    // The envelope is shared by every row; check NOLA where samples are kept.
    var envelope = [Float](repeating: 0, count: fullLength)
    for t in 0..<frames {
        for j in 0..<nFFT { envelope[t * hop + j] += windowValues[j] * windowValues[j] }
    }
    if start < kept {
        let lowest = envelope[start..<kept].map(abs).min()!
        precondition(lowest >= 1e-11, "istft: window overlap-add envelope reaches \(lowest) (NOLA fails) for n_fft \(nFFT), hop \(hop)")
    }

    // Frames are inverted independently, then each output sample gathers its overlapping frames,
    // so both passes are free of write races.
    let scale: Float = normalized ? Float(Double(nFFT).squareRoot()) : 1
    let plan = RealFFTPlan.shared(nFFT)
    let input = spectrum.contiguous()
    let frameSignals = Tensor(zeros: [batch, frames, nFFT])
    input.withUnsafeFloats { source in
        frameSignals.withUnsafeMutableFloats { destination in
            let src = source.baseAddress!, dst = destination.baseAddress!
            windowValues.withUnsafeBufferPointer { w in
                let w = w.baseAddress!
                ThreadPool.shared.parallelFor(batch * frames, minimumChunk: max(1, 16_384 / nFFT)) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * keptBins) { scratch in
                        let bins0 = scratch.baseAddress!
                        for job in range {
                            let b = job / frames, t = job % frames
                            let column = src + 2 * (b * bins * frames + t)
                            for f in 0..<keptBins {
                                bins0[2 * f] = column[2 * f * frames]
                                bins0[2 * f + 1] = column[2 * f * frames + 1]
                            }
                            let out = dst + job * nFFT
                            plan.inverse(bins0, out, scale: scale)
                            for j in 0..<nFFT { out[j] *= w[j] }
                        }
                    }
                }
            }
        }
    }

    let output = Tensor(zeros: (batched ? [batch] : []) + [outputLength])
    frameSignals.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let src = source.baseAddress!, dst = destination.baseAddress!
            envelope.withUnsafeBufferPointer { envelope in
                let envelope = envelope.baseAddress!
                ThreadPool.shared.parallelFor(batch * max(0, kept - start), minimumChunk: 4096) { range in
                    let span = kept - start
                    for job in range {
                        let b = job / span, sample = start + job % span
                        let first = sample >= nFFT ? (sample - nFFT) / hop + 1 : 0
                        let last = min(frames - 1, sample / hop)
                        var sum: Float = 0
                        if first <= last {
                            for t in first...last { sum += src[(b * frames + t) * nFFT + sample - t * hop] }
                        }
                        dst[b * outputLength + sample - start] = sum / envelope[sample]
                    }
                }
            }
        }
    }
    return output
}
