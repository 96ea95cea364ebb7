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
        Assert.Contains(Helps ? $"on ({HugePages.Tunable})" : "off:", flat);
        Assert.Contains("a b ü", flat);
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
