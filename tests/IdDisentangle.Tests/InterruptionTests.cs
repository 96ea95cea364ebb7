using System.Diagnostics;
using System.Text.Json.Nodes;
using IdDisentangle.IO;
using IdDisentangle.Runs;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>
/// Long jobs killed with SIGKILL part-way and resumed give the same output as an uninterrupted job, and a full disk
/// (an IOException injected into the writers) loses nothing already written.
/// </summary>
public class InterruptionTests
{
    /// <summary>Starts the command, SIGKILLs it once <paramref name="started"/> holds, then runs it again to the
    /// end.</summary>
    static void KillAndResume(string[] args, Func<bool> started)
    {
        using (var p = IddisProcess.Start(args).Process)
        {
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (!started())
            {
                Assert.False(p.HasExited, "the job ended before it could be killed");
                Assert.True(DateTime.UtcNow < deadline, "the job made no progress in 3 minutes");
                Thread.Sleep(2);
            }
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        var resumed = IddisProcess.Run(args);
        Assert.True(resumed.Code == 0, resumed.Stdout + resumed.Stderr);
    }

    /// <summary>The files of a folder (hidden temporaries excluded) and their bytes.</summary>
    static Dictionary<string, byte[]> Files(string dir) =>
        Directory
            .EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    static void NoTemporaryFiles(string dir) =>
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir, ".*", SearchOption.AllDirectories));

    [Fact]
    [Trait("Category", TestCategories.Slow)]
    public void AKilledGenerateDataResumesToTheSameData()
    {
        string root = TestPaths.NewTempDir();
        string[] Args(string outDir) =>
            [
                "generate-data",
                "--generator",
                TestPaths.Fixture("stylegan2", "generator.pt"),
                "--num-images",
                "40",
                "--batch-size",
                "2",
                "--seed",
                "5",
                "--out",
                outDir,
            ];
        string straight = Path.Combine(root, "straight"),
            killed = Path.Combine(root, "killed");
        var run = IddisProcess.Run(Args(straight));
        Assert.True(run.Code == 0, run.Stdout + run.Stderr);
        string images = Path.Combine(killed, "images");
        KillAndResume(
            Args(killed),
            () =>
                Directory.Exists(images)
                && Directory.EnumerateFiles(images, "*", SearchOption.AllDirectories).Count() >= 8
        );
        var expected = Files(straight);
        var actual = Files(killed);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, bytes) in expected)
            Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"{name} differs");
        NoTemporaryFiles(killed);
    }

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public void AKilledAlignResumesToTheSameFaces()
    {
        TestModels.RequireFaceApi();
        string root = TestPaths.NewTempDir();
        string photos = Path.Combine(root, "photos");
        Directory.CreateDirectory(photos);
        foreach (var f in Directory.GetFiles(TestPaths.Data("photos-unaligned")))
            if (Imaging.ImageIO.HasImageExtension(f))
                File.Copy(f, Path.Combine(photos, Path.GetFileName(f)));
        string[] Args(string outDir) =>
            ["align", "--input-dir", photos, "--out", outDir, "--size", "64", "--landmarks", "face-api", "--all-faces"];
        string straight = Path.Combine(root, "straight"),
            killed = Path.Combine(root, "killed");
        var run = IddisProcess.Run(Args(straight));
        Assert.True(run.Code == 0, run.Stdout + run.Stderr);
        KillAndResume(
            Args(killed),
            () => Directory.Exists(killed) && Directory.EnumerateFiles(killed, "*.png").Count() >= 2
        );
        var expected = Files(straight);
        var actual = Files(killed);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, bytes) in expected.Where(e => e.Key != "alignment.json"))
            Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"{name} differs");
        // The record lists the same faces with the same placement (its key order follows the order of writing).
        var a = JsonNode.Parse(expected["alignment.json"])!.AsObject();
        var b = JsonNode.Parse(actual["alignment.json"])!.AsObject();
        Assert.Equal(a.Select(e => e.Key).Order(), b.Select(e => e.Key).Order());
        foreach (var (key, value) in a)
            Assert.True(JsonNode.DeepEquals(value, b[key]), $"alignment.json {key} differs");
        NoTemporaryFiles(killed);
    }

    /// <summary>Fails like a full disk after some bytes are written.</summary>
    static void FullDisk(Stream s)
    {
        s.Write(new byte[1000]);
        throw new IOException("No space left on device");
    }

    [Fact]
    public void AFullDiskDuringAnAtomicWriteKeepsTheOldFile()
    {
        string dir = TestPaths.NewTempDir();
        string file = Path.Combine(dir, "image.png");
        File.WriteAllText(file, "the previous version");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(file, FullDisk));
        Assert.Contains(file, e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal("the previous version", File.ReadAllText(file));
        Assert.Equal([file], Directory.GetFiles(dir));
    }

    [Fact]
    public void AFullDiskDuringACheckpointKeepsThePreviousCheckpoint()
    {
        string dir = TestPaths.NewTempDir();
        var run = new RunFolder(dir);
        run.Create();
        var state = new CheckpointState(4, 0, 0.5, 10, 0, "faceapi", 128, "inceptionv3", 80, "none", true);
        using var module = TorchSharp.torch.nn.Linear(3, 2);
        void Good(string path) => StateDicts.SaveSafetensors(module, path);
        run.SaveCheckpoint(
            RunFolder.Last,
            state,
            new Dictionary<CheckpointPart, Action<string>>
            {
                [CheckpointPart.Mapper] = Good,
                [CheckpointPart.WDiscriminator] = Good,
            }
        );
        string last = Path.Combine(dir, "weights", "last");
        var before = Files(last);
        var e = Assert.Throws<IOException>(() =>
            run.SaveCheckpoint(
                RunFolder.Last,
                state with
                {
                    Step = 6,
                },
                new Dictionary<CheckpointPart, Action<string>>
                {
                    [CheckpointPart.Mapper] = Good,
                    [CheckpointPart.WDiscriminator] = path => AtomicFile.Write(path, FullDisk),
                }
            )
        );
        Assert.Contains(last, e.Message);
        Assert.Contains("No space left on device", e.Message);
        var after = Files(last);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, bytes) in before)
            Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} changed");
        Assert.Equal(4, run.OpenCheckpoint(RunFolder.Last).State.Step);
        Assert.Equal([last], Directory.GetDirectories(Path.Combine(dir, "weights")));
        NoTemporaryFiles(dir);
    }
}
