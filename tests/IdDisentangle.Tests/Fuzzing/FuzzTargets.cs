using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Runs;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests.Fuzzing;

/// <summary>
/// One reader under fuzzing: the seed files it starts from (tests/fuzz/seeds/FOLDER), the name the mutated input is
/// written under, companion files copied beside it (a manifest's shard), and what reading it means.
/// </summary>
internal sealed record FuzzTarget(
    string Name,
    string SeedFolder,
    string InputName,
    Action<string> Read,
    bool Text = false,
    string[]? Companions = null,
    string[]? SeedFiles = null,
    bool Recovers = false,
    long MaxAllocation = 256L << 20
)
{
    public override string ToString() => Name;
}

/// <summary>Every reader of a file a user can hand us, from weights to our own JSON.</summary>
internal static class FuzzTargets
{
    public static string SeedRoot => Path.Combine(TestPaths.RepoRoot, "tests", "fuzz", "seeds");
    public static string RegressionRoot => Path.Combine(TestPaths.RepoRoot, "tests", "fuzz", "regressions");

    public static readonly FuzzTarget[] All =
    [
        new("torch-zip", "torch", "input.pt", p => Dispose(TorchCheckpoint.Load(p))),
        new("torch-legacy", "torch-legacy", "input.pt", p => Dispose(TorchCheckpoint.Load(p))),
        new("pickle", "pickle", "input.pkl", p => Dispose(NvidiaPickle.Read(p))),
        new(
            "nvidia-pickle",
            "../../fixtures/nvidia-stylegan2",
            "input.pkl",
            p => Dispose(NvidiaPickle.Read(p)),
            SeedFiles: ["tf_stylegan2.pkl"]
        ),
        new("safetensors", "safetensors", "input.safetensors", p => Dispose(StateDicts.ReadSafetensors(p))),
        new(
            "keras-h5",
            "keras-h5",
            "input.h5",
            p => Dispose(KerasHdf5File.Read(p).Layers.SelectMany(l => l.Weights.Select(w => w.Value)))
        ),
        new(
            "tfjs-manifest",
            "tfjs",
            "weights_manifest.json",
            p => Dispose(TfjsWeights.Load(p)),
            Text: true,
            Companions: ["group1-shard1of1.bin"],
            SeedFiles: ["weights_manifest.json"]
        ),
        new(
            "tfjs-shard",
            "tfjs",
            "group1-shard1of1.bin",
            p => Dispose(TfjsWeights.Load(Path.Combine(Path.GetDirectoryName(p)!, "weights_manifest.json"))),
            Companions: ["weights_manifest.json"],
            SeedFiles: ["group1-shard1of1.bin"]
        ),
        new("npy", "npy", "input.npy", p => Npy.Read(p).Dispose()),
        new("dlib", "dlib", "input.dat", p => DlibShapePredictorFile.Load(p)),
        new(
            "deb",
            "deb",
            "input.deb",
            p => DebianWeights.ExtractMember(p, "usr/share/dlib/model.dat", Path.ChangeExtension(p, ".out"))
        ),
        // The time a decode may take is bounded by the pixel limit (--max-pixels); a tiny file declaring the default
        // 134 MP decodes for seconds, so fuzzing uses 16 MP.
        new("image", "image", "input.img", p => ImageIO.Read(p, maxPixels: 16L << 20).Dispose()),
        new(
            "run-config",
            "run-config",
            "config.json",
            p => new RunFolder(Path.GetDirectoryName(p)!).ReadConfig(),
            Text: true
        ),
        new(
            "checkpoint-state",
            "checkpoint-state",
            "weights/last/state.json",
            p =>
                new RunFolder(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(p)!, "..", ".."))).OpenCheckpoint(
                    "last"
                ),
            Text: true
        ),
        new(
            "alignment-record",
            "alignment-record",
            "alignment.json",
            p => AlignmentJob.WriteRecord(p + ".copy", AlignmentJob.ReadRecord(p, _ => { })),
            Text: true,
            Recovers: true // an unreadable record is kept aside and a new one started: never an error
        ),
    ];

    public static FuzzTarget Named(string name) => All.Single(t => t.Name == name);

    public static IReadOnlyList<string> Seeds(FuzzTarget target)
    {
        string dir = Path.GetFullPath(Path.Combine(SeedRoot, target.SeedFolder));
        return target.SeedFiles is { } files
            ? files.Select(f => Path.Combine(dir, f)).ToList()
            : Directory.GetFiles(dir).Order(StringComparer.Ordinal).ToList();
    }

    static void Dispose(object? o)
    {
        switch (o)
        {
            case IDisposable d:
                d.Dispose();
                break;
            case System.Collections.IDictionary dict:
                foreach (var v in dict.Values)
                    Dispose(v);
                break;
            case System.Collections.IEnumerable list and not string:
                foreach (var v in list)
                    Dispose(v);
                break;
        }
    }
}
