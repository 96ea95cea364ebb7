namespace IdDisentangle.Tests;

/// <summary>Where the repository, its test data and the shared data/fixtures folder are.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared beside the repository (or $IDDIS_SHARED), for optional larger sweeps; null when absent.</summary>
    public static string? Shared
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("IDDIS_SHARED");
            string path = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(path) ? path : null;
        }
    }

    /// <summary>A reference fixture copied into the repository (tests/fixtures/NAME/...).</summary>
    public static string Fixture(params string[] parts) => Existing(Path.Combine([RepoRoot, "tests", "fixtures", .. parts]));

    /// <summary>A data file or folder copied into the repository (tests/fixtures/data/NAME/...).</summary>
    public static string Data(params string[] parts) => Existing(Path.Combine([RepoRoot, "tests", "fixtures", "data", .. parts]));

    static string Existing(string path)
    {
        Assert.True(File.Exists(path) || Directory.Exists(path), $"missing fixture {path} (tests/fixtures is part of the repository)");
        return path;
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
