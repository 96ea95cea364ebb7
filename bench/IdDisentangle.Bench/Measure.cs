using System.Diagnostics;

namespace IdDisentangle.Bench;

internal static class Measure
{
    /// <summary>Median seconds of <paramref name="iters"/> timed runs after <paramref name="warmup"/> untimed
    /// ones.</summary>
    public static (double Median, double Min) Time(Action run, int warmup, int iters)
    {
        for (int i = 0; i < warmup; i++)
            run();
        var times = new List<double>();
        for (int i = 0; i < iters; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return (times[times.Count / 2], times[0]);
    }

    /// <summary>Peak resident set size of this process so far (VmHWM), in MiB.</summary>
    public static double PeakRssMiB() => StatusMiB("VmHWM:");

    /// <summary>A kB field of /proc/self/status (VmHWM:, VmRSS:), in MiB.</summary>
    public static double StatusMiB(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return double.NaN;
    }
}

/// <summary>
/// Peak resident memory by phase of a training step: at each phase boundary the kernel's peak (VmHWM) is read for the
/// phase that ends and reset (/proc/self/clear_refs, 5) for the one that begins; the largest over the steps observed.
/// </summary>
internal sealed class PhaseMemory
{
    readonly Dictionary<string, (double Start, double Peak, double Seconds)> _phases = [];
    readonly System.Diagnostics.Stopwatch _clock = new();
    string? _current;
    double _start;

    /// <summary>The peak of the whole process, including what the resets hid.</summary>
    public double OverallPeakMiB { get; private set; }

    /// <summary>Ends the current phase and begins <paramref name="phase"/> (null: record nothing until the next).</summary>
    public void Begin(string? phase)
    {
        double peak = Measure.StatusMiB("VmHWM:");
        OverallPeakMiB = Math.Max(OverallPeakMiB, Math.Max(peak, Measure.PeakRssMiB()));
        if (_current is not null && _current != "end")
        {
            var before = _phases.GetValueOrDefault(_current);
            _phases[_current] = (
                Math.Max(before.Start, _start),
                Math.Max(before.Peak, peak),
                before.Seconds + _clock.Elapsed.TotalSeconds
            );
        }
        File.WriteAllText("/proc/self/clear_refs", "5");
        _current = phase;
        _start = Measure.StatusMiB("VmRSS:");
        _clock.Restart();
    }

    public Dictionary<string, object> Report() =>
        _phases.ToDictionary(
            p => p.Key,
            p =>
                (object)
                    new Dictionary<string, double>
                    {
                        ["rss_at_start_mib"] = p.Value.Start,
                        ["peak_mib"] = p.Value.Peak,
                        ["seconds_total"] = p.Value.Seconds,
                    }
        );
}
