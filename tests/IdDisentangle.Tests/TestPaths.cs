namespace IdDisentangle.Tests;

/// <summary>Where the repository, its test data and the shared data/fixtures folder are.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared beside the repository (or $IDDIS_SHARED), for optional larger sweeps; null when
    /// absent.</summary>
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
    public static string Fixture(params string[] parts) =>
        Existing(Path.Combine([RepoRoot, "tests", "fixtures", .. parts]));

    /// <summary>A data file or folder copied into the repository (tests/fixtures/data/NAME/...).</summary>
    public static string Data(params string[] parts) =>
        Existing(Path.Combine([RepoRoot, "tests", "fixtures", "data", .. parts]));

    static string Existing(string path)
    {
        Assert.True(
            File.Exists(path) || Directory.Exists(path),
            $"missing fixture {path} (tests/fixtures is part of the repository)"
        );
        return path;
    }

    public static string TestData(params string[] parts) =>
        Path.Combine([RepoRoot, "tests", "IdDisentangle.Tests", "TestData", .. parts]);

    public static string NewTempDir()
    {
        string d = Path.Combine(RunTempRoot.Value, Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Set to keep this run's temporary files (training runs, checkpoints) for inspection.</summary>
    public const string KeepFilesVariable = "IDDIS_KEEP_TEST_FILES";

    /// <summary>
    /// One folder per test run, deleted when the run ends: training checkpoints are hundreds of MB each, and runs
    /// that left them behind once filled the disk. The test host is often stopped before a large folder is gone, so
    /// each run also removes the folders of earlier runs whose process has ended (and any older than a day).
    /// </summary>
    static readonly Lazy<string> RunTempRoot = new(() =>
    {
        string parent = Path.Combine(Path.GetTempPath(), "iddis-tests");
        Directory.CreateDirectory(parent);
        foreach (var stale in new DirectoryInfo(parent).EnumerateDirectories().Where(IsLeftOver))
            try
            {
                stale.Delete(recursive: true);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        string root = Path.Combine(parent, $"run-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(root);
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(KeepFilesVariable)))
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try
                {
                    Directory.Delete(root, recursive: true);
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            };
        return root;
    });

    static bool IsLeftOver(DirectoryInfo dir)
    {
        if (dir.LastWriteTimeUtc < DateTime.UtcNow.AddDays(-1))
            return true;
        var parts = dir.Name.Split('-');
        if (parts.Length != 3 || parts[0] != "run" || !int.TryParse(parts[1], out int pid))
            return false;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true; // no such process: its run is over
        }
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IdDisentangle.slnx")))
            dir = dir.Parent;
        return dir?.FullName
            ?? throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
