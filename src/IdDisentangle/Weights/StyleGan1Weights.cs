using System.Text.RegularExpressions;
using IdDisentangle.Models;
using IdDisentangle.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// StyleGAN (v1) generators in their two file layouts: NVIDIA's released pickles (a tuple (G, D, Gs) of dnnlib
/// Network objects holding numpy arrays; Gs is used), read by the restricted unpickler with nothing executed; and
/// the Keras HDF5 weights of the TF2 port the paper's release uses. Variables are matched by the distinctive parts
/// of their names (mapping layer, resolution block, layer, variable), never by exact strings or order, and the
/// configuration (resolution, channels, mapping depth, style width) is read off the shapes.
/// </summary>
internal static partial class StyleGan1Weights
{
    /// <summary>Loads a StyleGAN (v1) file; <paramref name="pickleRoot"/> is the pickle's object tree when the caller has read it.</summary>
    public static StyleGan1Generator Load(string path, out GeneratorLoadReport report, object? pickleRoot = null)
    {
        var format = GeneratorFiles.Sniff(path);
        var (raw, layout) = format switch
        {
            GeneratorFiles.Format.Pickle => (
                ReadPickle(path, pickleRoot ?? NvidiaPickle.Read(path)),
                "NVIDIA pickle (dnnlib Network Gs)"
            ),
            GeneratorFiles.Format.Hdf5 => (ReadHdf5(path), "Keras HDF5 (TF2 port)"),
            _ => throw new InvalidDataException($"{path}: not a StyleGAN (v1) pickle or Keras HDF5 file"),
        };
        var notes = new List<string>();
        var canonical = Canonicalize(raw, path, notes);
        var config = InferConfig(canonical, path);
        var g = new StyleGan1Generator(config);
        Assign(g, canonical, path);
        g.eval();
        foreach (var p in g.parameters())
            p.requires_grad = false;
        bool hasAvg = canonical.ContainsKey("dlatent_avg");
        if (config.MappingLayers == 0)
            notes.Add(
                "synthesis network only: renders W+ codes (inference, training on an existing dataset); sampling z needs a file with the mapping"
            );
        else if (!hasAvg)
        {
            using (torch.no_grad())
            using (var scope = torch.NewDisposeScope())
            using (var rng = new torch.Generator(seed: 0))
                g.MeanLatent.copy_(g.Map(torch.randn([10_000, config.StyleDim], generator: rng)).mean([0]));
            notes.Add("no dlatent_avg in the file: the mean w was computed from 10,000 samples");
        }
        report = new GeneratorLoadReport(path, "StyleGAN (v1)", layout, hasAvg, notes);
        return g;
    }

    /// <summary>The pickle's Gs variables, named component/variable (mapping/Dense0/weight, synthesis/4x4/Conv/weight,
    /// dlatent_avg).</summary>
    static Dictionary<string, Tensor> ReadPickle(string path, object? root) =>
        NvidiaPickle.TfVariables(
            NvidiaPickle.TfGs(root)
                ?? throw new InvalidDataException($"{path}: expected a pickled (G, D, Gs) tuple of dnnlib Networks")
        );

    static Dictionary<string, Tensor> ReadHdf5(string path) =>
        KerasHdf5File.Read(path).AllWeights.ToDictionary(w => w.Name, w => w.Value);

    [GeneratedRegex(@"(?<![A-Za-z])Dense(\d+)/(kernel|weight|bias)")]
    private static partial Regex DenseRx();

    [GeneratedRegex(@"(?:^|/)noise(\d+)(?:/|:|$)")]
    private static partial Regex NoiseRx();

    [GeneratedRegex(@"(?:^|/)(\d+)x\1/(Const|Conv0_up|Conv1|Conv)/(.*)$")]
    private static partial Regex BlockRx();

    [GeneratedRegex(@"ToRGB_lod(\d+)/(kernel|weight|bias)")]
    private static partial Regex ToRgbRx();

    /// <summary>
    /// Names in either layout to one canonical set: mapping/Dense{i}/weight|bias, synthesis/noise{i},
    /// synthesis/{r}x{r}/{Const|Conv|Conv0_up|Conv1}/{const|weight|bias|noise_strength|style_weight|style_bias},
    /// synthesis/torgb/weight|bias, dlatent_avg. Progressive-growing leftovers (lod, ToRGB_lod1..) are dropped.
    /// </summary>
    static Dictionary<string, Tensor> Canonicalize(Dictionary<string, Tensor> raw, string path, List<string> notes)
    {
        var result = new Dictionary<string, Tensor>();
        var ignored = new List<string>();
        var unknown = new List<string>();
        void Put(string key, Tensor value, string from)
        {
            if (!result.TryAdd(key, value))
                throw new InvalidDataException($"{path}: both {from} and another variable map to {key}");
        }
        foreach (var (name, value) in raw)
        {
            string n = name.Replace(":0", "");
            Match m;
            if (n.EndsWith("dlatent_avg", StringComparison.Ordinal))
                Put("dlatent_avg", value, name);
            else if ((m = DenseRx().Match(n)).Success)
                Put(
                    $"mapping/Dense{m.Groups[1].Value}/{(m.Groups[2].Value == "bias" ? "bias" : "weight")}",
                    value,
                    name
                );
            else if ((m = ToRgbRx().Match(n)).Success)
            {
                if (m.Groups[1].Value == "0")
                    Put($"synthesis/torgb/{(m.Groups[2].Value == "bias" ? "bias" : "weight")}", value, name);
                else
                    ignored.Add(name);
            }
            else if ((m = BlockRx().Match(n)).Success)
            {
                string rest = m.Groups[3].Value;
                string variable = rest switch
                {
                    "const" => "const",
                    "Noise/weight" => "noise_strength",
                    "StyleMod/kernel" or "StyleMod/weight" => "style_weight",
                    "StyleMod/bias" => "style_bias",
                    "bias" or "bias/bias" => "bias",
                    "kernel" or "weight" => "weight",
                    _ => "",
                };
                if (variable.Length == 0)
                    unknown.Add(name);
                else
                    Put(
                        $"synthesis/{m.Groups[1].Value}x{m.Groups[1].Value}/{m.Groups[2].Value}/{variable}",
                        value,
                        name
                    );
            }
            else if ((m = NoiseRx().Match(n)).Success)
                Put($"synthesis/noise{m.Groups[1].Value}", value, name);
            else if (n.EndsWith("lod", StringComparison.Ordinal))
                ignored.Add(name);
            else
                unknown.Add(name);
        }
        if (unknown.Count > 0)
            throw new WeightMismatchException(
                $"{path}: variables that are not part of a StyleGAN generator: {string.Join(", ", unknown.Take(8))}"
            );
        if (ignored.Count > 0)
            notes.Add($"ignored progressive-growing leftovers: {string.Join(", ", ignored)}");
        return result;
    }

    static StyleGan1Config InferConfig(Dictionary<string, Tensor> w, string path)
    {
        var resolutions = w
            .Keys.Select(k => Regex.Match(k, @"^synthesis/(\d+)x\d+/"))
            .Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value))
            .Distinct()
            .Order()
            .ToList();
        if (resolutions.Count == 0 || resolutions[0] != 4)
            throw new WeightMismatchException($"{path}: no 4x4 block; not a StyleGAN synthesis network");
        int size = resolutions[^1];
        for (int r = 4; r <= size; r *= 2)
            if (!resolutions.Contains(r))
                throw new WeightMismatchException($"{path}: the {r}x{r} block is missing");
        var channels = new Dictionary<int, int>();
        channels[4] = (int)Need(w, "synthesis/4x4/Const/const", path).shape[1];
        for (int r = 8; r <= size; r *= 2)
            channels[r] = (int)Need(w, $"synthesis/{r}x{r}/Conv1/weight", path).shape[3];
        int mappingLayers = w.Keys.Count(k =>
            k.StartsWith("mapping/Dense", StringComparison.Ordinal) && k.EndsWith("/weight", StringComparison.Ordinal)
        );
        int styleDim = (int)Need(w, "synthesis/4x4/Const/style_weight", path).shape[0];
        int fmaps = mappingLayers > 1 ? (int)Need(w, "mapping/Dense0/weight", path).shape[1] : styleDim;
        return new StyleGan1Config(size, styleDim, mappingLayers, channels, MappingFmaps: fmaps);
    }

    static Tensor Need(Dictionary<string, Tensor> w, string key, string path) =>
        w.TryGetValue(key, out var t) ? t : throw new WeightMismatchException($"{path}: missing {key}");

    /// <summary>TensorFlow layouts (dense [in,out], conv [kh,kw,in,out]) to the module's.</summary>
    static void Assign(StyleGan1Generator g, Dictionary<string, Tensor> w, string path)
    {
        var c = g.Config;
        var sd = new Dictionary<string, Tensor>();
        var used = new HashSet<string>();
        Tensor Take(string key)
        {
            used.Add(key);
            return Need(w, key, path);
        }
        for (int i = 0; i < c.MappingLayers; i++)
        {
            sd[$"mapping.{i}.weight"] = Take($"mapping/Dense{i}/weight").t().contiguous();
            sd[$"mapping.{i}.bias"] = Take($"mapping/Dense{i}/bias");
        }
        sd["const"] = Take("synthesis/4x4/Const/const");
        var layerNames = new List<string> { "4x4/Const", "4x4/Conv" };
        for (int r = 8; r <= c.Size; r *= 2)
            layerNames.AddRange([$"{r}x{r}/Conv0_up", $"{r}x{r}/Conv1"]);
        for (int i = 0; i < layerNames.Count; i++)
        {
            string p = $"synthesis/{layerNames[i]}";
            if (i > 0)
                sd[$"layers.{i}.weight"] = TfjsWeights.ConvFilter(Take($"{p}/weight"));
            sd[$"layers.{i}.noise_strength"] = Take($"{p}/noise_strength");
            sd[$"layers.{i}.bias"] = Take($"{p}/bias");
            sd[$"layers.{i}.style.weight"] = Take($"{p}/style_weight").t().contiguous();
            sd[$"layers.{i}.style.bias"] = Take($"{p}/style_bias");
            sd[$"noise_{i}"] = Take($"synthesis/noise{i}");
        }
        sd["torgb_weight"] = TfjsWeights.ConvFilter(Take("synthesis/torgb/weight"));
        sd["torgb_bias"] = Take("synthesis/torgb/bias");
        sd["dlatent_avg"] = w.TryGetValue("dlatent_avg", out var avg) ? avg : torch.zeros(c.StyleDim);
        used.Add("dlatent_avg");
        var extra = w.Keys.Where(k => !used.Contains(k)).ToList();
        if (extra.Count > 0)
            throw new WeightMismatchException($"{path}: unexpected variables {string.Join(", ", extra.Take(8))}");
        StateDicts.Assign(g, sd, path);
    }
}
