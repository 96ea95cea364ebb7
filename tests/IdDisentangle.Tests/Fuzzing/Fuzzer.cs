using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace IdDisentangle.Tests.Fuzzing;

/// <summary>What a fuzzing run of one target did and found.</summary>
internal sealed record FuzzReport(
    string Target,
    int Executions,
    int Loaded,
    int Refused,
    int Outcomes,
    double Seconds,
    double SlowestMs,
    IReadOnlyList<string> Findings
)
{
    public override string ToString() =>
        $"{Target}: {Executions} executions in {Seconds:F1} s ({Executions / Math.Max(Seconds, 1e-9):F0}/s), "
        + $"{Loaded} loaded, {Refused} refused with a typed error, {Outcomes} distinct outcomes, "
        + $"slowest {SlowestMs:F0} ms of CPU time, {Findings.Count} finding(s)";
}

/// <summary>
/// A mutation fuzzer guided by outcomes rather than coverage: inputs are mutated from a corpus that starts with the
/// seed files, and an input whose outcome (loaded, or the error's type and wording with numbers and paths taken
/// out) was not seen before joins the corpus. A finding is an input that escapes as anything but a typed error
/// naming the file (an IOException or InvalidDataException that names it), or takes longer than the time limit; each
/// is written to the findings folder, named by its hash, ready to become a regression file.
/// </summary>
internal sealed class Fuzzer(FuzzTarget target, int seed, string workDir, string findingsDir)
{
    /// <summary>Wall-clock time after which a reader counts as hung: generous, as a loaded machine stretches
    /// it.</summary>
    public TimeSpan ExecutionLimit { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>An input of a few kilobytes that keeps the reader busy for longer than this is a finding too (a
    /// hostile file must not stall us).</summary>
    public TimeSpan SlowLimit { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The CPU time the last <see cref="Check"/> kept its reader busy.</summary>
    public TimeSpan LastBusy { get; private set; }

    /// <summary>The outcome of reading one input: null when it was acceptable, else what went wrong.</summary>
    public string? Check(byte[] input, out string signature)
    {
        string path = Path.Combine(workDir, target.InputName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, input);
        Exception? error = null;
        long allocated = 0;
        TimeSpan busy = TimeSpan.Zero;
        // Its own thread, timed by that thread's CPU time: on a loaded machine (CI runs many tests at once) a pool
        // thread can take seconds to start and a running one can wait seconds for a core, and neither is the file's
        // doing. A file that stalls the reader keeps it busy.
        var reader = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var started = ThreadCpuTime.Now();
            using var scope = NewDisposeScope();
            try
            {
                target.Read(path);
            }
            catch (Exception e)
            {
                error = e;
            }
            busy = ThreadCpuTime.Now() - started;
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        })
        {
            IsBackground = true, // a hung reader must not keep the test host alive
        };
        reader.Start();
        bool ended = reader.Join(ExecutionLimit);
        LastBusy = ended ? busy : ExecutionLimit;
        if (!ended)
        {
            signature = "hang";
            return $"took longer than {ExecutionLimit.TotalSeconds:F0} s";
        }
        if (busy > SlowLimit)
        {
            signature = "slow";
            return $"took {busy.TotalMilliseconds:F0} ms of CPU time ({error?.GetType().Name ?? "loaded"})";
        }
        // A bomb: managed memory far beyond what the file could justify (tensors of a few MB are fine).
        if (allocated > Math.Max(target.MaxAllocation, 64L * input.Length))
        {
            signature = "bomb";
            string outcome = error?.GetType().Name ?? "loaded";
            return $"allocated {allocated >> 20} MiB for a file of {input.Length} bytes ({outcome})";
        }
        if (error is null)
        {
            signature = "loaded";
            return null;
        }
        signature = error.GetType().Name + ": " + Normalise(error.Message);
        bool typed = error is IOException or InvalidDataException;
        bool named = error.Message.Contains(workDir, StringComparison.Ordinal);
        if (typed && named)
            return null;
        return $"{error.GetType().FullName}{(typed ? " without the file's name" : "")}: "
            + error.Message.Split('\n')[0]
            + (typed ? "" : $"\n{error.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
    }

    string Normalise(string message)
    {
        message = message.Replace(workDir, "DIR").Split('\n')[0];
        message = Regex.Replace(message, @"\d+", "#");
        return message.Length > 80 ? message[..80] : message;
    }

    /// <summary>Runs until <paramref name="executions"/> inputs are done or <paramref name="budget"/> is
    /// spent.</summary>
    public FuzzReport Run(int executions, TimeSpan budget)
    {
        Directory.CreateDirectory(workDir);
        foreach (var companion in target.Companions ?? [])
            File.Copy(
                Path.Combine(FuzzTargets.SeedRoot, target.SeedFolder, companion),
                Path.Combine(workDir, companion),
                overwrite: true
            );
        var rng = new Random(seed);
        var corpus = FuzzTargets.Seeds(target).Select(File.ReadAllBytes).ToList();
        var seen = new HashSet<string>();
        var findings = new List<string>();
        int done = 0,
            loaded = 0,
            refused = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var s in corpus.ToList())
            if (Check(s, out var signature) is { } problem)
                findings.Add($"seed: {problem}");
            else
                seen.Add(signature);
        double slowest = 0;
        while (done < executions && clock.Elapsed < budget)
        {
            var input = Mutator.Mutate(corpus[rng.Next(corpus.Count)], corpus, rng, target.Text);
            var problem = Check(input, out var signature);
            slowest = Math.Max(slowest, LastBusy.TotalMilliseconds);
            done++;
            if (signature == "loaded")
                loaded++;
            else if (problem is null)
                refused++;
            if (problem is not null)
            {
                string hash = Convert.ToHexStringLower(SHA256.HashData(input))[..16];
                string dir = Path.Combine(findingsDir, target.Name);
                Directory.CreateDirectory(dir);
                File.WriteAllBytes(Path.Combine(dir, $"{hash}{Path.GetExtension(target.InputName)}"), input);
                findings.Add($"{hash}: {problem}");
                if (signature == "hang" || findings.Count >= 20)
                    break; // a hung reader keeps its thread: stop here
            }
            else if (seen.Add(signature) && corpus.Count < 256)
                corpus.Add(input);
        }
        return new FuzzReport(
            target.Name,
            done,
            loaded,
            refused,
            seen.Count,
            clock.Elapsed.TotalSeconds,
            slowest,
            findings
        );
    }
}

/// <summary>The calling thread's CPU time, where the system gives it (Linux, macOS); else the wall clock.</summary>
internal static class ThreadCpuTime
{
    public static TimeSpan Now()
    {
        int clock =
            OperatingSystem.IsLinux() ? 3
            : OperatingSystem.IsMacOS() ? 16
            : -1; // CLOCK_THREAD_CPUTIME_ID
        if (clock >= 0 && clock_gettime(clock, out var t) == 0)
            return TimeSpan.FromTicks(t.Seconds * TimeSpan.TicksPerSecond + t.Nanoseconds / 100);
        return TimeSpan.FromTicks(
            System.Diagnostics.Stopwatch.GetTimestamp()
                * TimeSpan.TicksPerSecond
                / System.Diagnostics.Stopwatch.Frequency
        );
    }

    [StructLayout(LayoutKind.Sequential)]
    struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc")]
    static extern int clock_gettime(int clock, out TimeSpec time);
}
