namespace IdDisentangle.Tests;

/// <summary>Where the repository, its test data and the shared data/fixtures folder are.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared beside the repository (or $IDDIS_SHARED); null when absent.</summary>
    public static string? Shared
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("IDDIS_SHARED");
            string path = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(path) ? path : null;
        }
    }

    /// <summary>A path under ../shared; skips the calling test when the shared folder is absent.</summary>
    public static string SharedFile(params string[] parts)
    {
        Skip.If(Shared is null, "../shared is not present beside the repository (set IDDIS_SHARED to its location)");
        string p = Path.Combine([Shared!, .. parts]);
        Assert.True(File.Exists(p) || Directory.Exists(p), $"missing shared file {p}");
        return p;
    }

    public static string TestData(params string[] parts) =>
        Path.Combine([RepoRoot, "tests", "IdDisentangle.Tests", "TestData", .. parts]);

    public static string NewTempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "iddis-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IdDisentangle.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
