using Xunit.Abstractions;

namespace IdDisentangle.Tests.Fuzzing;

/// <summary>
/// Every reader fuzzed for a bounded number of executions (deterministic: the same inputs each run), and every file
/// a fuzzing run ever found replayed. Longer runs by hand: IDDIS_FUZZ_SECONDS=600 (per target) and IDDIS_FUZZ_SEED
/// give a time budget and another sequence; findings are written under the test run's temporary folder and named
/// in the failure.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets => new(FuzzTargets.All.Select(t => t.Name));

    static int Executions(string target) =>
        target switch
        {
            "nvidia-pickle" => 60, // a 2.8 MB pickle per execution
            "image" or "keras-h5" or "deb" => 400,
            _ => 1500,
        };

    [Theory]
    [Trait("Category", TestCategories.Slow)]
    [MemberData(nameof(Targets))]
    public void ReadersRefuseMutatedFilesWithTypedErrors(string name)
    {
        var target = FuzzTargets.Named(name);
        string root = TestPaths.NewTempDir();
        bool byHand = int.TryParse(Environment.GetEnvironmentVariable("IDDIS_FUZZ_SECONDS"), out int seconds);
        int seed = int.TryParse(Environment.GetEnvironmentVariable("IDDIS_FUZZ_SEED"), out int s) ? s : 1;
        var fuzzer = new Fuzzer(target, seed, Path.Combine(root, "work"), Path.Combine(root, "findings"));
        var report = byHand
            ? fuzzer.Run(int.MaxValue, TimeSpan.FromSeconds(seconds))
            : fuzzer.Run(Executions(name), TimeSpan.FromMinutes(2));
        output.WriteLine(report.ToString());
        Console.WriteLine($"fuzz {report}");
        Assert.True(
            report.Findings.Count == 0,
            $"{report}\nfindings in {Path.Combine(root, "findings", name)}:\n" + string.Join("\n", report.Findings)
        );
        if (!target.Recovers)
            Assert.True(report.Refused > 0, "no mutated input was refused: the target does not read its input");
    }

    public static TheoryData<string, string> Regressions
    {
        get
        {
            var data = new TheoryData<string, string>();
            if (Directory.Exists(FuzzTargets.RegressionRoot))
                foreach (var dir in Directory.GetDirectories(FuzzTargets.RegressionRoot).Order(StringComparer.Ordinal))
                foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                    if (!file.EndsWith(".md", StringComparison.Ordinal))
                        data.Add(Path.GetFileName(dir), Path.GetFileName(file));
            return data;
        }
    }

    /// <summary>Each input a fuzzing run found gives a typed error naming the file (or loads).</summary>
    [Theory]
    [MemberData(nameof(Regressions))]
    public void FoundInputsGiveTypedErrors(string target, string file)
    {
        // Replays judge errors and allocations; time is judged by the fuzzing runs (a loaded CI machine is slow).
        var fuzzer = new Fuzzer(FuzzTargets.Named(target), 0, TestPaths.NewTempDir(), TestPaths.NewTempDir())
        {
            SlowLimit = TimeSpan.FromMinutes(2),
            ExecutionLimit = TimeSpan.FromMinutes(2),
        };
        var problem = fuzzer.Check(File.ReadAllBytes(Path.Combine(FuzzTargets.RegressionRoot, target, file)), out _);
        Assert.True(problem is null, problem);
    }
}
