using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Models.Identity;
using IdDisentangle.Weights;
using IdDisentangle.Weights.Keras;
using PureHDF;

namespace IdDisentangle.Tests;

/// <summary>Writes Keras HDF5 files (weights-only or complete model) with PureHDF, in Keras's own group
/// layout.</summary>
public static class KerasFiles
{
    /// <summary>layers: (layer name, [(weight name as in weight_names, value)]); a weight name's '/' become nested
    /// groups, as h5py makes them.</summary>
    public static void Write(
        string path,
        IReadOnlyList<(string Layer, IReadOnlyList<(string Name, Tensor Value)> Weights)> layers,
        string? modelConfig = null
    )
    {
        var file = new H5File();
        H5Group root = file;
        if (modelConfig is not null)
        {
            file.Attributes = new Dictionary<string, object>
            {
                ["model_config"] = modelConfig,
                ["keras_version"] = "2.2.4",
                ["backend"] = "tensorflow",
            };
            root = new H5Group();
            file["model_weights"] = root;
        }
        root.Attributes = new Dictionary<string, object> { ["layer_names"] = layers.Select(l => l.Layer).ToArray() };
        foreach (var (layerName, weights) in layers)
        {
            var group = Child(root, layerName);
            group.Attributes = new Dictionary<string, object>
            {
                ["weight_names"] = weights.Select(w => w.Name).ToArray(),
            };
            foreach (var (name, value) in weights)
            {
                var parts = name.Split('/');
                var g = group;
                foreach (var p in parts[..^1])
                    g = Child(g, p);
                using var c = value.to(ScalarType.Float32).contiguous();
                g[parts[^1]] = new H5Dataset(
                    c.data<float>().ToArray(),
                    fileDims: c.shape.Select(d => (ulong)d).ToArray()
                );
            }
        }
        file.Write(path);
    }

    static H5Group Child(H5Group parent, string path)
    {
        var g = parent;
        foreach (var part in path.Split('/'))
        {
            if (!g.TryGetValue(part, out var existing))
            {
                existing = new H5Group();
                g[part] = existing;
            }
            g = (H5Group)existing;
        }
        return g;
    }
}

public class KerasTests
{
    static string Fx(string f) => TestPaths.TestData("keras-functional", f);

    /// <summary>The functional importer on a model file with the VGGFace2 ResNet's layer types equals the numpy forward
    /// written with it.</summary>
    [Fact]
    public void FunctionalModelMatchesKerasSemantics()
    {
        using var scope = NewDisposeScope();
        var x = Npy.Read(Fx("input_nhwc.npy")).permute(0, 3, 1, 2);
        using var model = new KerasFunctionalModel(Fx("tiny_vggface2_layout.h5"));
        using var embedder = new KerasFunctionalModel(Fx("tiny_vggface2_layout.h5"), "second-to-last");
        Assert.Equal("l2_norm", embedder.OutputLayer);
        using var _ = no_grad();
        float dOut = TensorAssert.MaxAbsDiff(model.forward(x), Npy.Read(Fx("output.npy")));
        float dEmb = TensorAssert.MaxAbsDiff(embedder.forward(x), Npy.Read(Fx("embedding.npy")));
        Assert.True(dOut < 1e-5f && dEmb < 1e-5f, $"output differs by {dOut}, embedding by {dEmb}");
    }

    [Fact]
    public void ImporterIsDifferentiable()
    {
        using var scope = NewDisposeScope();
        using var model = new KerasFunctionalModel(Fx("tiny_vggface2_layout.h5"), "second-to-last");
        var x = Npy.Read(Fx("input_nhwc.npy")).permute(0, 3, 1, 2).contiguous().requires_grad_();
        model.forward(x).sum().backward();
        Assert.True(x.grad is not null && x.grad.abs().sum().item<float>() > 0 && x.grad.isfinite().all().item<bool>());
    }

    [Fact]
    public void UnsupportedLayersAndWeightsOnlyFilesAreClearErrors()
    {
        string dir = TestPaths.NewTempDir();
        string conv3d = Path.Combine(dir, "conv3d.h5");
        string config = """
            {"class_name": "Model", "config": {"name": "m", "layers": [
              {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 8, 8, 3]}, "inbound_nodes": []},
              {"name": "weird_3d", "class_name": "Conv3D", "config": {"filters": 2}, "inbound_nodes": [[["input_1", 0, 0, {}]]]}],
              "input_layers": [["input_1", 0, 0]], "output_layers": [["weird_3d", 0, 0]]}}
            """;
        KerasFiles.Write(conv3d, [("input_1", []), ("weird_3d", [])], config);
        var e = Assert.Throws<UnsupportedKerasLayerException>(() => new KerasFunctionalModel(conv3d));
        Assert.Contains("weird_3d", e.Message);
        Assert.Contains("Conv3D", e.Message);
        string weightsOnly = Path.Combine(dir, "weights.h5");
        KerasFiles.Write(weightsOnly, [("dense", [("dense/kernel:0", ones(2, 2)), ("dense/bias:0", zeros(2))])]);
        var e2 = Assert.Throws<InvalidDataException>(() => new KerasFunctionalModel(weightsOnly));
        Assert.Contains("weights-only", e2.Message);
    }
}
