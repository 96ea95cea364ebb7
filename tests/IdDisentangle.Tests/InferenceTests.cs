using IdDisentangle.Data;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Training;

namespace IdDisentangle.Tests;

/// <summary>Inference on a run trained for two steps on the shared 64-px fixture generator.</summary>
[Collection("console")]
public class InferenceTests
{
    static readonly Lazy<(string Run, string Data)> Trained = new(() =>
    {
        string root = TestPaths.NewTempDir();
        string data = Path.Combine(root, "dataset");
        using (var g = Weights.StyleGan2Weights.Load(TestPaths.SharedFile("fixtures", "stylegan2", "generator.pt"), out _))
            DatasetGenerator.Generate(g, new DatasetGenerationOptions { OutDir = data, NumImages = 12, Seed = 4 });
        var c = new TrainingConfig
        {
            Name = "tiny", DatasetDir = data, GeneratorPath = TestPaths.SharedFile("fixtures", "stylegan2", "generator.pt"),
            ResultsDir = Path.Combine(root, "results"), BatchSize = 2, NumSteps = 2, TrainDataSize = 8, TestSize = 2,
            PixelLoss = PixelLoss.L1, AttrInputSize = 80, FaceCrop = "none",
        };
        using (var t = new Trainer(c)) t.Run(resume: false);
        return (c.RunDir, data);
    });

    static void Require()
    {
        TestModels.RequireFaceApi();
        Skip.IfNot(File.Exists(TestModels.Store.PathOf("inceptionv3")), "InceptionV3 weights missing: run 'iddis models fetch'");
    }

    static string Folder(params string[] images)
    {
        string dir = TestPaths.NewTempDir();
        var layout = new DatasetLayout(Trained.Value.Data);
        foreach (var spec in images)
        {
            var parts = spec.Split('=');
            File.Copy(layout.ImagePath(long.Parse(parts[1])), Path.Combine(dir, parts[0] + ".png"));
        }
        return dir;
    }

    [SkippableFact]
    public void GridWritesEveryCombinationAndTheTable()
    {
        Require();
        var ids = InferenceJobs.ReadFolder(Folder("anna=8", "bob=9", "cid=10"), _ => { });
        string attrDir = Folder("smile=11", "pose=7");
        File.WriteAllText(Path.Combine(attrDir, "notes.txt"), "not an image");
        File.WriteAllText(Path.Combine(attrDir, "broken.png"), "not a png");
        var log = new List<string>();
        var attrs = InferenceJobs.ReadFolder(attrDir, log.Add);
        Assert.Contains(log, l => l.Contains("skipped 1 non-image"));
        Assert.Contains(log, l => l.Contains("broken.png"));
        string outDir = Path.Combine(TestPaths.NewTempDir(), "out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "existing output stays");
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        Assert.Equal(6, InferenceJobs.Grid(model, ids, attrs, outDir, batchSize: 4));
        foreach (var a in new[] { "pose", "smile" })
            foreach (var i in new[] { "anna", "bob", "cid" })
                Assert.True(File.Exists(Path.Combine(outDir, $"attr_{a}", $"id_{i}.png")), $"attr_{a}/id_{i}.png");
        Assert.True(File.Exists(Path.Combine(outDir, "keep.txt")));
        using var grid = ImageIO.Read(Path.Combine(outDir, "grid.png"));
        // 4 rows (header + 3 identities) and 3 columns (header + 2 attributes) of 64-px cells, plus labels and padding.
        Assert.True(grid.shape[1] >= 4 * 66 && grid.shape[2] >= 3 * 66);
        // A cell equals the file of its combination.
        using var cell = ImageIO.Read(Path.Combine(outDir, "attr_pose", "id_bob.png"));
        using var swap = model.Swap(ids[1].Image.unsqueeze(0), attrs.First(a => a.Stem == "pose").Image.unsqueeze(0))[0];
        Assert.True(TensorAssert.MaxAbsDiff(cell, swap) <= 1.01f / 255);
    }

    [SkippableFact]
    public void PairsMatchStemsAndListTheRest()
    {
        Require();
        var ids = InferenceJobs.ReadFolder(Folder("a=8", "b=9", "c=10"), _ => { });
        var attrs = InferenceJobs.ReadFolder(Folder("b=11", "a=7", "z=6"), _ => { });
        string outDir = TestPaths.NewTempDir();
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, "last", device: "cpu");
        var (written, unmatched) = InferenceJobs.Pairs(model, ids, attrs, outDir);
        Assert.Equal(2, written);
        Assert.True(File.Exists(Path.Combine(outDir, "a.png")) && File.Exists(Path.Combine(outDir, "b.png")));
        Assert.Equal(2, unmatched.Count);
        Assert.Contains(unmatched, u => u.StartsWith("identity") && u.EndsWith("c.png"));
        Assert.Contains(unmatched, u => u.StartsWith("attributes") && u.EndsWith("z.png"));
    }

    [SkippableFact]
    public void InterpolationEndFramesAreTheEndpointResults()
    {
        Require();
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        var attrCase = InferenceJobs.ReadFolder(Folder("id=8", "attr1=9", "attr2=10"), _ => { });
        var frames = InferenceJobs.Interpolate(model, attrCase, Path.Combine(TestPaths.NewTempDir(), "o"), steps: 5);
        Assert.Equal(5, frames.shape[0]);
        var id = attrCase.First(x => x.Stem == "id").Image.unsqueeze(0);
        using (var start = model.Swap(id, attrCase.First(x => x.Stem == "attr1").Image.unsqueeze(0)))
            Assert.True(TensorAssert.MaxAbsDiff(frames[0..1], start) < 1e-5f);
        using (var end = model.Swap(id, attrCase.First(x => x.Stem == "attr2").Image.unsqueeze(0)))
            Assert.True(TensorAssert.MaxAbsDiff(frames[4..5], end) < 1e-5f);

        var idCase = InferenceJobs.ReadFolder(Folder("id_a=8", "id_b=9", "attr=10"), _ => { });
        string outDir = Path.Combine(TestPaths.NewTempDir(), "o2");
        var f2 = InferenceJobs.Interpolate(model, idCase, outDir, steps: 3);
        using (var end = model.Swap(idCase.First(x => x.Stem == "id_b").Image.unsqueeze(0), idCase.First(x => x.Stem == "attr").Image.unsqueeze(0)))
            Assert.True(TensorAssert.MaxAbsDiff(f2[2..3], end) < 1e-5f);
        Assert.True(File.Exists(Path.Combine(outDir, "frame_02.png")) && File.Exists(Path.Combine(outDir, "strip.png")));

        var bad = InferenceJobs.ReadFolder(Folder("id=8", "attr=9"), _ => { });
        Assert.Throws<InvalidDataException>(() => InferenceJobs.Interpolate(model, bad, TestPaths.NewTempDir()));
    }

    [SkippableFact]
    public void MissingFoldersRunsAndInputsAreClearErrors()
    {
        Require();
        Assert.Throws<DirectoryNotFoundException>(() => InferenceJobs.ReadFolder(Path.Combine(TestPaths.NewTempDir(), "nope"), _ => { }));
        Assert.Throws<InvalidDataException>(() => InferenceJobs.ReadFolder(TestPaths.NewTempDir(), _ => { }));
        Assert.Throws<FileNotFoundException>(() => DisentanglementModel.FromRun(TestPaths.NewTempDir()));
        Assert.Throws<FileNotFoundException>(() => DisentanglementModel.FromRun(Trained.Value.Run, "best_nothing"));
        // An output that would replace an input is refused.
        string dir = Folder("x=8");
        var ids = InferenceJobs.ReadFolder(dir, _ => { });
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        var before = File.ReadAllBytes(Path.Combine(dir, "x.png"));
        Assert.Throws<IOException>(() => InferenceJobs.Pairs(model, ids, ids, dir));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "x.png")));
    }
}
