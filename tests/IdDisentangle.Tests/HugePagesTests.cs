using IdDisentangle.Runtime;
using Xunit;

namespace IdDisentangle.Tests;

/// <summary>
/// The CLI replaces itself, at start, with itself under glibc's huge-page tunable where that helps
/// (<see cref="HugePages"/>); a real <c>iddis doctor</c> reports what it runs with, keeps its arguments through the
/// restart, and IDDIS_HUGE_PAGES=0 keeps the process as started.
/// </summary>
public class HugePagesTests
{
    static bool Helps => HugePages.WhyNot() is null or "already active";

    [Fact]
    public void TheCliRunsWithHugePagesWhereTheyHelpAndKeepsItsArguments()
    {
        string store = Path.Combine(TestPaths.NewTempDir(), "a b ü");
        var (code, stdout, stderr) = IddisProcess.Run("doctor", "--offline", "--models-dir", store);
        Assert.True(code == 0, stderr + stdout);
        // The table may wrap a long path: compare with its borders and line breaks gone.
        string flat = string.Join(
            " ",
            stdout.Replace('│', ' ').Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
        );
        Assert.Contains(Helps ? "on (GLIBC_TUNABLES=" : "off:", flat);
        // doctor trains nothing: the rendering tunables (unless started with the tunable already).
        if (HugePages.WhyNot() is null)
            Assert.Contains(HugePages.Tunables(HeapUse.Rendering) + ")", flat.Replace(" ", ""));
        Assert.Contains("a b ü", flat);
    }

    /// <summary>ffmpeg gets the tunables the user started iddis with, not the ones iddis restarted under.</summary>
    [Theory]
    [InlineData("", null)]
    [InlineData("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2")]
    public void ChildProcessesGetTheTunablesAsStarted(string started, string? expected)
    {
        var child = new System.Diagnostics.ProcessStartInfo("ffmpeg");
        child.Environment["GLIBC_TUNABLES"] = started + HugePages.Tunables(HeapUse.Rendering);
        child.Environment["IDDIS_STARTED_GLIBC_TUNABLES"] = started;
        HugePages.RestoreStartedTunables(child, started);
        Assert.Equal(expected, child.Environment.TryGetValue("GLIBC_TUNABLES", out var v) ? v : null);
        Assert.False(child.Environment.ContainsKey("IDDIS_STARTED_GLIBC_TUNABLES"));

        var unchanged = new System.Diagnostics.ProcessStartInfo("ffmpeg");
        unchanged.Environment["GLIBC_TUNABLES"] = "glibc.malloc.arena_max=4";
        HugePages.RestoreStartedTunables(unchanged, started: null);
        Assert.Equal("glibc.malloc.arena_max=4", unchanged.Environment["GLIBC_TUNABLES"]);
    }

    [Theory]
    [InlineData("train", true)]
    [InlineData("demo", true)]
    [InlineData("swap", false)]
    [InlineData("video", false)]
    [InlineData("generate-data", false)]
    public void TheCommandsThatTrainKeepToOneHeap(string command, bool trains)
    {
        var use = Cli.CliApp.HeapUseOf([command, "--help"]);
        Assert.Equal(trains ? HeapUse.Training : HeapUse.Rendering, use);
        const string keep = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483648";
        Assert.Equal(trains ? keep + ":glibc.malloc.arena_max=1" : keep, HugePages.Tunables(use));
    }

    [Fact]
    public void IddisHugePagesZeroKeepsTheProcessAsStarted()
    {
        var (code, stdout, stderr) = IddisProcess.Run(
            new Dictionary<string, string?> { ["IDDIS_HUGE_PAGES"] = "0", ["GLIBC_TUNABLES"] = null },
            "doctor",
            "--offline"
        );
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("off: IDDIS_HUGE_PAGES=0", stdout);
    }
}
