using System.Globalization;
using System.Text.RegularExpressions;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// NVIDIA's StyleGAN pickles, read by the restricted unpickler with one allow-list: the stylegan2-ada-pytorch and
/// stylegan3-repository snapshots (a dict with <c>G_ema</c>, each network a persistent object whose class source
/// is carried in the file and never run), and the TensorFlow (G, D, Gs) tuples of dnnlib Networks (StyleGAN and
/// StyleGAN2). Anything else a pickle names is refused by name.
/// </summary>
internal static class NvidiaPickle
{
    /// <summary>A network of NVIDIA's persistence module: its class name and the module's <c>__dict__</c>.</summary>
    internal sealed record PersistentObject(string ClassName, PyDict State);

    static IEnumerable<PickleGlobal> Globals(string path) =>
        TorchCheckpoint
            .Globals()
            .Concat(NumpyPickle.Globals())
            .Append(
                new PickleGlobal
                {
                    Module = "torch_utils.persistence",
                    Name = "_reconstruct_persistent_obj",
                    // The meta's module_src is the class's Python source: it is data here, never executed.
                    Call = a =>
                        a.Length == 1
                        && a[0] is PyDict meta
                        && meta.GetOrNull("class_name") is string name
                        && meta.GetOrNull("state") is PyDict state
                            ? new PersistentObject(name, state)
                            : throw new InvalidDataException($"{path}: a persistent object without class and state"),
                }
            )
            .Append(
                new PickleGlobal
                {
                    Module = "torch.storage",
                    Name = "_load_from_bytes",
                    Call = a =>
                        a.Length == 1 && a[0] is byte[] bytes
                            ? TorchCheckpoint.StorageFromBytes(bytes, path)
                            : throw new InvalidDataException($"{path}: _load_from_bytes without bytes"),
                }
            )
            .Append(PickleGlobal.PlainClass("dnnlib.util", "EasyDict"))
            .Append(PickleGlobal.PlainClass("dnnlib.tflib.network", "Network"));

    /// <summary>The Gs of a TensorFlow (G, D, Gs) tuple of dnnlib Networks (or a lone Network), else null.</summary>
    public static PyObject? TfGs(object? root) =>
        root switch
        {
            PyTuple { Count: 3 } t when t[2] is PyObject { Name: "Network" } o => o,
            PyObject { Name: "Network" } o => o,
            _ => null,
        };

    /// <summary>A TF Network's variables and its components', named component/variable.</summary>
    public static Dictionary<string, Tensor> TfVariables(PyObject network)
    {
        var result = new Dictionary<string, Tensor>();
        void Walk(PyObject n, string prefix)
        {
            if (n.State is not PyDict state)
                return;
            if (state.GetOrNull("variables") is List<object?> vars)
                foreach (var v in vars)
                    if (v is PyTuple { Count: 2 } pair && pair[0] is string name && pair[1] is NumpyArray a)
                        result[prefix + name] = a.ToTensor();
            if (state.GetOrNull("components") is PyDict components)
                foreach (var (k, v) in components)
                    if (k is string cname && v is PyObject child)
                        Walk(child, prefix + cname + "/");
        }
        Walk(network, "");
        return result;
    }

    public static object? Read(string path)
    {
        using var fs = File.OpenRead(path);
        using var buffered = new BufferedStream(fs, 1 << 20);
        return new PickleReader(path, Globals(path)).Load(buffered);
    }
}

/// <summary>
/// NVIDIA's StyleGAN2 generators, in the rosinality layout of <see cref="StyleGan2Generator"/>: the PyTorch
/// snapshots of stylegan2-ada-pytorch (<c>training.networks.Generator</c>) and of the stylegan3 repository
/// (<c>training.networks_stylegan2</c>), and the TensorFlow StyleGAN2 Gs. The configuration (resolution, channels,
/// mapping depth, w_dim) comes from the tensors, <c>conv_clamp</c> from the layers' attributes, the truncation
/// centre from <c>mapping.w_avg</c> (<c>dlatent_avg</c>) and the const noise from each layer's stored noise.
/// </summary>
internal static partial class NvidiaStyleGan2Weights
{
    /// <summary>The generator of a pickle NVIDIA's StyleGAN2 code wrote, or null when the pickle is of another kind.</summary>
    public static StyleGan2Generator? TryLoad(string path, object? root, out GeneratorLoadReport? report)
    {
        report = null;
        Dictionary<string, Tensor> sd;
        string layout;
        double? clamp = null;
        if (root is PyDict snapshot && snapshot.GetOrNull("G_ema") is { } ema)
        {
            var g =
                ema as NvidiaPickle.PersistentObject
                ?? throw new InvalidDataException($"{path}: G_ema is not a network of NVIDIA's persistence module");
            var tensors = new Dictionary<string, Tensor>();
            Collect(g, "", tensors, ref clamp);
            if (tensors.Keys.Any(k => k.StartsWith("synthesis.input.", StringComparison.Ordinal)))
                throw new InvalidDataException(
                    $"{path}: a StyleGAN3 (alias-free) generator, which this tool does not read yet; StyleGAN2 "
                        + "files (stylegan2-ada-pytorch, the stylegan3 repository's stylegan2-*.pkl) are read"
                );
            if (tensors.ContainsKey("mapping.embed.weight"))
                throw new InvalidDataException($"{path}: a class-conditional generator (c_dim > 0) is not supported");
            sd = FromPyTorch(tensors, path);
            layout = "NVIDIA PyTorch snapshot (G_ema)";
        }
        else if (
            NvidiaPickle.TfGs(root) is { } gs
            && NvidiaPickle.TfVariables(gs) is var vars
            && vars.Keys.Any(k => k.EndsWith("mod_weight"))
        )
        {
            sd = FromTensorFlow(vars, path);
            layout = "NVIDIA TensorFlow pickle (Gs)";
        }
        else
            return null;

        var avg = sd["latent_avg"];
        sd.Remove("latent_avg");
        var config = StyleGan2Weights.InferConfig(sd, path) with { ConvClamp = clamp };
        var generator = new StyleGan2Generator(config);
        // rosinality's layout stores the [1,3,3,1] resampling kernels; NVIDIA's filter was checked to be the same.
        foreach (var (key, kernel) in generator.state_dict())
            if (key.EndsWith(".kernel", StringComparison.Ordinal))
                sd.TryAdd(key, kernel);
        StateDicts.Assign(generator, sd, path);
        generator.eval();
        foreach (var p in generator.parameters())
            p.requires_grad = false;
        generator.MeanLatent = avg.to(ScalarType.Float32);
        var notes = new List<string>();
        if (clamp is { } c)
            notes.Add($"conv_clamp {c.ToString(CultureInfo.InvariantCulture)}");
        report = new GeneratorLoadReport(path, "StyleGAN2 (NVIDIA)", layout, true, notes);
        return generator;
    }

    /// <summary>The module tree of a persistent network as state-dict names (a.b.c), and its conv_clamp.</summary>
    static void Collect(
        NvidiaPickle.PersistentObject module,
        string prefix,
        Dictionary<string, Tensor> into,
        ref double? clamp
    )
    {
        var state = module.State;
        foreach (var group in new[] { "_parameters", "_buffers" })
            if (state.GetOrNull(group) is PyDict items)
                foreach (var (k, v) in items)
                    if (v is Tensor t)
                        into[prefix + k] = t;
        if (state.GetOrNull("conv_clamp") is { } value && ToDouble(value) is { } c)
        {
            if (clamp is { } other && other != c)
                throw new InvalidDataException($"layers with conv_clamp {other} and {c}: not supported");
            clamp = c;
        }
        if (state.GetOrNull("_modules") is PyDict children)
            foreach (var (k, v) in children)
                if (v is NvidiaPickle.PersistentObject child)
                    Collect(child, $"{prefix}{k}.", into, ref clamp);
    }

    static double? ToDouble(object value) =>
        value switch
        {
            long l => l,
            double d => d,
            NumpyArray a => a.ToTensor().ToDouble(),
            _ => null,
        };

    [GeneratedRegex(@"^synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)$")]
    private static partial Regex BlockLayer();

    /// <summary>stylegan2-ada-pytorch names to rosinality's: the same network, one layer at a time.</summary>
    static Dictionary<string, Tensor> FromPyTorch(Dictionary<string, Tensor> t, string path)
    {
        var sd = new Dictionary<string, Tensor>();
        Tensor Need(string key) =>
            t.TryGetValue(key, out var v)
                ? v
                : throw new WeightMismatchException($"{path}: not a StyleGAN2 generator of NVIDIA's code: no {key}");
        for (int i = 0; t.ContainsKey($"mapping.fc{i}.weight"); i++)
        {
            sd[$"style.{i + 1}.weight"] = t[$"mapping.fc{i}.weight"];
            sd[$"style.{i + 1}.bias"] = Need($"mapping.fc{i}.bias");
        }
        sd["latent_avg"] = Need("mapping.w_avg");
        var resolutions = t
            .Keys.Select(k => BlockLayer().Match(k))
            .Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
            .Distinct()
            .Order()
            .ToList();
        if (resolutions.Count == 0 || resolutions[0] != 4)
            throw new WeightMismatchException($"{path}: no synthesis.b4 block: not a StyleGAN2 generator");
        var c4 = Need("synthesis.b4.const");
        sd["input.input"] = c4.unsqueeze(0);
        int noise = 0;
        void Styled(string from, string to)
        {
            var w = Need($"{from}.weight");
            sd[$"{to}.conv.weight"] = w.unsqueeze(0);
            sd[$"{to}.conv.modulation.weight"] = Need($"{from}.affine.weight");
            sd[$"{to}.conv.modulation.bias"] = Need($"{from}.affine.bias");
            sd[$"{to}.noise.weight"] = Need($"{from}.noise_strength").reshape(1);
            sd[$"{to}.activate.bias"] = Need($"{from}.bias");
            var n = Need($"{from}.noise_const");
            sd[$"noises.noise_{noise++}"] = n.reshape(1, 1, n.shape[0], n.shape[1]);
            CheckFilter(t, from, path);
        }
        void Rgb(string from, string to)
        {
            sd[$"{to}.conv.weight"] = Need($"{from}.weight").unsqueeze(0);
            sd[$"{to}.conv.modulation.weight"] = Need($"{from}.affine.weight");
            sd[$"{to}.conv.modulation.bias"] = Need($"{from}.affine.bias");
            sd[$"{to}.bias"] = Need($"{from}.bias").reshape(1, -1, 1, 1);
        }
        Styled("synthesis.b4.conv1", "conv1");
        Rgb("synthesis.b4.torgb", "to_rgb1");
        for (int b = 1; b < resolutions.Count; b++)
        {
            string block = $"synthesis.b{resolutions[b]}";
            Styled($"{block}.conv0", $"convs.{2 * (b - 1)}");
            Styled($"{block}.conv1", $"convs.{2 * (b - 1) + 1}");
            Rgb($"{block}.torgb", $"to_rgbs.{b - 1}");
        }
        return sd;
    }

    /// <summary>The resampling filter NVIDIA stores per layer must be the standard normalised [1,3,3,1].</summary>
    static void CheckFilter(Dictionary<string, Tensor> t, string layer, string path)
    {
        if (!t.TryGetValue($"{layer}.resample_filter", out var f))
            return;
        using var expected = torch
            .outer(torch.tensor(new float[] { 1, 3, 3, 1 }), torch.tensor(new float[] { 1, 3, 3, 1 }))
            .DividedBy(64f);
        if (
            !f.shape.SequenceEqual(expected.shape)
            || (f.to(ScalarType.Float32) - expected).abs().max().ToDouble() > 1e-6
        )
            throw new WeightMismatchException($"{path}: {layer} resamples with another filter than [1,3,3,1]");
    }

    [GeneratedRegex(@"(?:^|/)(\d+)x\1/(Const|Conv0_up|Conv1|Conv|ToRGB)/(\w+)$")]
    private static partial Regex TfBlock();

    /// <summary>
    /// The TensorFlow Gs in rosinality's layout, as NVIDIA's legacy converter and rosinality's convert_weight.py
    /// map it: dense and conv kernels transposed to PyTorch's order, the upsampling convolutions' kernels flipped,
    /// the modulation biases +1 (TensorFlow adds the 1 at run time).
    /// </summary>
    static Dictionary<string, Tensor> FromTensorFlow(Dictionary<string, Tensor> v, string path)
    {
        var sd = new Dictionary<string, Tensor>();
        var byLayer = new Dictionary<(int Res, string Layer), Dictionary<string, Tensor>>();
        foreach (var (name, value) in v)
        {
            if (name.EndsWith("dlatent_avg", StringComparison.Ordinal))
                sd["latent_avg"] = value;
            else if (Regex.Match(name, @"(?:^|/)Dense(\d+)/(weight|bias)$") is { Success: true } d)
            {
                int i = int.Parse(d.Groups[1].Value, CultureInfo.InvariantCulture);
                sd[$"style.{i + 1}.{d.Groups[2].Value}"] =
                    d.Groups[2].Value == "weight" ? value.t().contiguous() : value;
            }
            else if (Regex.Match(name, @"(?:^|/)noise(\d+)$") is { Success: true } n)
                sd[$"noises.noise_{n.Groups[1].Value}"] = value;
            else if (TfBlock().Match(name) is { Success: true } b)
            {
                var key = (int.Parse(b.Groups[1].Value, CultureInfo.InvariantCulture), b.Groups[2].Value);
                if (!byLayer.TryGetValue(key, out var vars))
                    byLayer[key] = vars = [];
                vars[b.Groups[3].Value] = value;
            }
        }
        if (!sd.ContainsKey("latent_avg"))
            throw new WeightMismatchException($"{path}: no dlatent_avg in the TensorFlow Gs");
        Dictionary<string, Tensor> Layer(int res, string layer) =>
            byLayer.TryGetValue((res, layer), out var l)
                ? l
                : throw new WeightMismatchException($"{path}: no {res}x{res}/{layer} in the TensorFlow Gs");
        Tensor Need(Dictionary<string, Tensor> l, string name, string where) =>
            l.TryGetValue(name, out var t) ? t : throw new WeightMismatchException($"{path}: no {where}/{name}");
        // [k,k,in,out] -> [1,out,in,k,k]; the upsampling convolution's kernel also flipped in both spatial axes.
        Tensor Conv(Tensor w, bool flip) => (flip ? w.flip(0, 1) : w).permute(3, 2, 0, 1).unsqueeze(0).contiguous();
        void Modulation(Dictionary<string, Tensor> l, string to, string where)
        {
            sd[$"{to}.conv.modulation.weight"] = Need(l, "mod_weight", where).t().contiguous();
            sd[$"{to}.conv.modulation.bias"] = Need(l, "mod_bias", where).Plus(1);
        }
        void Styled(int res, string layer, string to)
        {
            var l = Layer(res, layer);
            string where = $"{res}x{res}/{layer}";
            sd[$"{to}.conv.weight"] = Conv(Need(l, "weight", where), flip: layer == "Conv0_up");
            Modulation(l, to, where);
            sd[$"{to}.noise.weight"] = Need(l, "noise_strength", where).reshape(1);
            sd[$"{to}.activate.bias"] = Need(l, "bias", where);
        }
        void Rgb(int res, string to)
        {
            var l = Layer(res, "ToRGB");
            string where = $"{res}x{res}/ToRGB";
            sd[$"{to}.conv.weight"] = Conv(Need(l, "weight", where), flip: false);
            Modulation(l, to, where);
            sd[$"{to}.bias"] = Need(l, "bias", where).reshape(1, -1, 1, 1);
        }
        sd["input.input"] = Need(Layer(4, "Const"), "const", "4x4/Const");
        Styled(4, "Conv", "conv1");
        Rgb(4, "to_rgb1");
        int top = byLayer.Keys.Max(k => k.Res);
        for (int res = 8, b = 0; res <= top; res *= 2, b++)
        {
            Styled(res, "Conv0_up", $"convs.{2 * b}");
            Styled(res, "Conv1", $"convs.{2 * b + 1}");
            Rgb(res, $"to_rgbs.{b}");
        }
        return sd;
    }
}
