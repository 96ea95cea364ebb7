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
    public static double PeakRssMiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return double.NaN;
    }
}
