using System.Text.Json.Nodes;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Weights.Keras;

/// <summary>A Keras layer type this importer cannot build, or a configuration of one it does not support.</summary>
internal sealed class UnsupportedKerasLayerException(string message) : IOException(message);

/// <summary>
/// A Keras functional CNN rebuilt in TorchSharp from a complete model file (<c>model.save</c>): the architecture
/// from its <c>model_config</c> JSON, the weights by layer name from <c>model_weights</c>. Layers: InputLayer,
/// Conv2D, BatchNormalization, Activation / ReLU, ZeroPadding2D, MaxPooling2D, AveragePooling2D, Global average and
/// max pooling, Add, Concatenate, Multiply, Dense, Flatten, Dropout (identity at inference) and Lambda when it is an
/// L2 normalisation; anything else is an error naming the layer. Computation is NCHW with TensorFlow's 'SAME'
/// padding rules; Flatten restores Keras's channels-last order, so a Dense after it sees what it saw in Keras.
/// Differentiable end to end. Input to <see cref="forward"/>: [N,C,H,W] as the Keras model expected its NHWC input.
/// </summary>
internal sealed class KerasFunctionalModel : nn.Module<Tensor, Tensor>
{
    sealed record Node(string Name, string Class, JsonObject Config, string[] Inputs);

    readonly List<Node> _nodes = [];
    readonly string _input,
        _output;
    readonly Dictionary<string, Tensor> _weights = []; // registered as parameters, by layer name + '.' + variable

    public string File { get; }
    public IReadOnlyList<string> LayerNames => _nodes.Select(n => n.Name).ToList();
    public string OutputLayer => _output;

    /// <summary>
    /// Loads <paramref name="path"/>. <paramref name="outputLayer"/>: the layer whose output <see cref="forward"/>
    /// returns (null: the model's output layer; "second-to-last": the layer feeding it, such as an embedding before a
    /// classifier).
    /// </summary>
    public KerasFunctionalModel(string path, string? outputLayer = null)
        : base(nameof(KerasFunctionalModel))
    {
        File = path;
        var h5 = KerasHdf5File.Read(path);
        if (h5.ModelConfig is null)
            throw new InvalidDataException(
                $"{path}: a weights-only Keras file; a complete model file (model.save) is needed to build the network"
            );
        var root =
            JsonNode.Parse(h5.ModelConfig)?.AsObject()
            ?? throw new InvalidDataException($"{path}: model_config is not JSON");
        var config =
            root["config"]?.AsObject() ?? throw new InvalidDataException($"{path}: model_config without config");
        var layers =
            config["layers"]?.AsArray()
            ?? throw new UnsupportedKerasLayerException(
                $"{path}: model_config has no layer list (a Sequential or subclassed model?)"
            );
        foreach (var l in layers)
        {
            var obj = l!.AsObject();
            string name = (string)obj["name"]! ?? (string)obj["config"]!["name"]!;
            string cls = (string)obj["class_name"]!;
            _nodes.Add(new Node(name, cls, obj["config"]!.AsObject(), InboundNames(obj, path)));
        }
        string Ref(JsonNode? n) =>
            n is JsonArray a && a.Count > 0 && a[0] is JsonArray inner
                ? (string)inner[0]!
                : (string)((JsonArray)n!)[0]!;
        _input = Ref(config["input_layers"]);
        string modelOutput = Ref(config["output_layers"]);
        _output = outputLayer switch
        {
            null => modelOutput,
            "second-to-last" => _nodes.First(n => n.Name == modelOutput).Inputs.Single(),
            _ => _nodes.Any(n => n.Name == outputLayer)
                ? outputLayer
                : throw new ArgumentException($"{path}: no layer named {outputLayer}"),
        };
        foreach (var node in _nodes)
            Validate(node, path);

        var byLayer = h5.Layers.ToDictionary(l => l.Name, l => l.Weights);
        foreach (var node in _nodes)
        {
            byLayer.TryGetValue(node.Name, out var w);
            w ??= [];
            string[] names = WeightNames(node);
            if (w.Count != names.Length)
                throw new WeightMismatchException(
                    $"{path}: layer {node.Name} ({node.Class}) has {w.Count} weights in the file, the architecture needs {names.Length}"
                );
            for (int i = 0; i < names.Length; i++)
            {
                var t = Convert(node, names[i], w[i].Value);
                var p = new Parameter(t.contiguous(), requires_grad: false);
                string key = $"{Sanitize(node.Name)}__{names[i]}";
                register_parameter(key, p);
                _weights[$"{node.Name}.{names[i]}"] = p;
            }
        }
    }

    static string Sanitize(string name) => name.Replace('.', '_').Replace('/', '_');

    static string[] InboundNames(JsonObject layer, string path)
    {
        if (layer["inbound_nodes"] is not JsonArray nodes || nodes.Count == 0)
            return [];
        if (nodes.Count > 1)
            throw new UnsupportedKerasLayerException(
                $"{path}: layer {layer["name"]} is called more than once (shared layers are not supported)"
            );
        if (nodes[0] is JsonArray calls)
            return calls.Select(c => (string)c!.AsArray()[0]!).ToArray();
        throw new UnsupportedKerasLayerException(
            $"{path}: layer {layer["name"]} uses an inbound_nodes format this importer does not read (Keras 2 lists expected)"
        );
    }

    static void Validate(Node n, string path)
    {
        switch (n.Class)
        {
            case "InputLayer"
            or "Conv2D"
            or "BatchNormalization"
            or "Activation"
            or "ReLU"
            or "ZeroPadding2D"
            or "MaxPooling2D"
            or "AveragePooling2D"
            or "GlobalAveragePooling2D"
            or "GlobalMaxPooling2D"
            or "Add"
            or "Concatenate"
            or "Multiply"
            or "Dense"
            or "Flatten"
            or "Dropout":
                break;
            case "Lambda":
                if (!IsL2Normalize(n))
                    throw new UnsupportedKerasLayerException(
                        $"{path}: Lambda layer {n.Name} is not an L2 normalisation; arbitrary Python code cannot be imported"
                    );
                break;
            default:
                throw new UnsupportedKerasLayerException(
                    $"{path}: layer {n.Name} has type {n.Class}, which this importer does not support"
                );
        }
        if (n.Class == "Conv2D" && n.Config["dilation_rate"] is JsonArray d && d.Any(v => (int)v! != 1))
            throw new UnsupportedKerasLayerException($"{path}: Conv2D {n.Name} is dilated, which is not supported");
        if (n.Config["data_format"] is JsonValue df && (string)df! == "channels_first")
            throw new UnsupportedKerasLayerException(
                $"{path}: layer {n.Name} is channels_first; only channels_last models are supported"
            );
    }

    /// <summary>A Lambda's code is marshalled Python; it is recognised (never run) by its name or the l2_normalize it
    /// calls.</summary>
    static bool IsL2Normalize(Node n)
    {
        string text = n.Name + " " + n.Config.ToJsonString();
        if (n.Config["function"] is JsonArray f && f.Count > 0 && f[0] is JsonValue code)
        {
            try
            {
                text += System.Text.Encoding.Latin1.GetString(System.Convert.FromBase64String(((string)code!).Trim()));
            }
            catch (FormatException) { }
        }
        return text.Contains("l2_normalize", StringComparison.OrdinalIgnoreCase)
            || text.Contains("l2_norm", StringComparison.OrdinalIgnoreCase)
            || text.Contains("l2norm", StringComparison.OrdinalIgnoreCase);
    }

    static string[] WeightNames(Node n) =>
        n.Class switch
        {
            "Conv2D" or "Dense" => Bool(n, "use_bias", true) ? ["kernel", "bias"] : ["kernel"],
            "BatchNormalization" =>
            [
                .. Bool(n, "scale", true) ? new[] { "gamma" } : [],
                .. Bool(n, "center", true) ? new[] { "beta" } : [],
                "moving_mean",
                "moving_variance",
            ],
            _ => [],
        };

    static bool Bool(Node n, string key, bool fallback) => n.Config[key] is JsonValue v ? (bool)v! : fallback;

    static int[] Pair(JsonNode? v, int fallback) =>
        v switch
        {
            JsonArray a => a.Select(x => (int)x!).ToArray(),
            JsonValue s => [(int)s!, (int)s!],
            _ => [fallback, fallback],
        };

    static Tensor Convert(Node n, string name, Tensor t) =>
        (n.Class, name) switch
        {
            ("Conv2D", "kernel") => TfjsWeights.ConvFilter(t), // [kh,kw,in,out] -> [out,in,kh,kw]
            ("Dense", "kernel") => t.t(), // [in,out] -> [out,in]
            _ => t,
        };

    Tensor W(Node n, string name) => _weights[$"{n.Name}.{name}"];

    public override Tensor forward(Tensor input)
    {
        var values = new Dictionary<string, Tensor>();
        foreach (var n in _nodes)
        {
            if (n.Class == "InputLayer")
            {
                values[n.Name] = input;
                continue;
            }
            var xs = n
                .Inputs.Select(i =>
                    values.TryGetValue(i, out var v)
                        ? v
                        : throw new InvalidDataException($"{File}: layer {n.Name} reads {i} before it is computed")
                )
                .ToArray();
            values[n.Name] = Apply(n, xs);
            if (n.Name == _output)
                return values[n.Name];
        }
        return values[_output];
    }

    Tensor Apply(Node n, Tensor[] xs)
    {
        var x = xs[0];
        var c = n.Config;
        switch (n.Class)
        {
            case "Conv2D":
            {
                int[] k = Pair(c["kernel_size"], 1),
                    s = Pair(c["strides"], 1);
                var w = W(n, "kernel");
                var b = Bool(n, "use_bias", true) ? W(n, "bias") : null;
                var y =
                    (string?)c["padding"] == "same"
                        ? F.conv2d(PadSame(x, k, s, 0), w, b, strides: [s[0], s[1]])
                        : F.conv2d(x, w, b, strides: [s[0], s[1]]);
                return Activate(y, (string?)c["activation"], n);
            }
            case "BatchNormalization":
            {
                double eps = c["epsilon"] is JsonValue e ? (double)e! : 1e-3;
                var mean = W(n, "moving_mean");
                var scale = torch.rsqrt(W(n, "moving_variance").Plus(eps));
                if (Bool(n, "scale", true))
                    scale = scale * W(n, "gamma");
                var shift = -mean * scale;
                if (Bool(n, "center", true))
                    shift = shift.Plus(W(n, "beta"));
                return (x * scale.view(1, -1, 1, 1)).Plus(shift.view(1, -1, 1, 1));
            }
            case "Activation":
                return Activate(x, (string?)c["activation"], n);
            case "ReLU":
                return F.relu(x);
            case "ZeroPadding2D":
            {
                int t,
                    b,
                    l,
                    r;
                switch (c["padding"])
                {
                    case JsonArray a when a.Count == 2 && a[0] is JsonArray:
                        (t, b) = ((int)a[0]![0]!, (int)a[0]![1]!);
                        (l, r) = ((int)a[1]![0]!, (int)a[1]![1]!);
                        break;
                    case JsonArray a when a.Count == 2:
                        (t, b, l, r) = ((int)a[0]!, (int)a[0]!, (int)a[1]!, (int)a[1]!);
                        break;
                    case JsonValue v:
                        t = b = l = r = (int)v!;
                        break;
                    default:
                        throw new UnsupportedKerasLayerException(
                            $"{File}: ZeroPadding2D {n.Name} has an unreadable padding"
                        );
                }
                return F.pad(x, [l, r, t, b]);
            }
            case "MaxPooling2D" or "AveragePooling2D":
            {
                int[] k = Pair(c["pool_size"], 2),
                    s = c["strides"] is null ? k : Pair(c["strides"], k[0]);
                bool max = n.Class == "MaxPooling2D";
                if ((string?)c["padding"] == "same")
                {
                    if (max)
                        return F.max_pool2d(PadSame(x, k, s, double.NegativeInfinity), [k[0], k[1]], [s[0], s[1]]);
                    // TensorFlow's average pool divides by the pixels inside the image only.
                    var ones = torch.ones(1, 1, x.shape[2], x.shape[3], dtype: x.dtype, device: x.device);
                    return F.avg_pool2d(PadSame(x, k, s, 0), [k[0], k[1]], [s[0], s[1]])
                        / F.avg_pool2d(PadSame(ones, k, s, 0), [k[0], k[1]], [s[0], s[1]]);
                }
                return max ? F.max_pool2d(x, [k[0], k[1]], [s[0], s[1]]) : F.avg_pool2d(x, [k[0], k[1]], [s[0], s[1]]);
            }
            case "GlobalAveragePooling2D":
                return x.mean([2, 3]);
            case "GlobalMaxPooling2D":
                return x.amax([2, 3]);
            case "Add":
                return xs.Skip(1).Aggregate(x, (a, b) => a.Plus(b));
            case "Multiply":
                return xs.Skip(1).Aggregate(x, (a, b) => a * b);
            case "Concatenate":
            {
                int axis = c["axis"] is JsonValue ax ? (int)ax! : -1;
                // Keras's channel axis (-1 or 3 in NHWC) is axis 1 here; a rank-2 input keeps its axis.
                int dim =
                    x.dim() == 4
                        ? axis switch
                        {
                            -1 or 3 => 1,
                            1 => 2,
                            2 => 3,
                            _ => throw new UnsupportedKerasLayerException(
                                $"{File}: Concatenate {n.Name} on axis {axis}"
                            ),
                        }
                        : axis;
                return torch.cat(xs, dim);
            }
            case "Flatten":
                return x.dim() == 4 ? x.permute(0, 2, 3, 1).flatten(1) : x.flatten(1);
            case "Dense":
            {
                var y = F.linear(x, W(n, "kernel"), Bool(n, "use_bias", true) ? W(n, "bias") : null);
                return Activate(y, (string?)c["activation"], n);
            }
            case "Dropout":
                return x;
            case "Lambda":
            {
                long dim = x.dim() == 4 ? 1 : x.dim() - 1;
                // tf.nn.l2_normalize, epsilon 1e-12
                return x / torch.sqrt(x.Squared().sum([dim], keepdim: true).ClampMin(1e-12));
            }
            default:
                throw new UnsupportedKerasLayerException($"{File}: layer {n.Name} has type {n.Class}");
        }
    }

    Tensor Activate(Tensor x, string? activation, Node n) =>
        activation switch
        {
            null or "linear" => x,
            "relu" => F.relu(x),
            "sigmoid" => torch.sigmoid(x),
            "tanh" => torch.tanh(x),
            "softmax" => F.softmax(x, x.dim() == 4 ? 1 : -1),
            _ => throw new UnsupportedKerasLayerException(
                $"{File}: layer {n.Name} uses activation {activation}, which is not supported"
            ),
        };

    static Tensor PadSame(Tensor x, int[] k, int[] s, double value) => Models.FaceApi.TfOps.PadSame(x, k, s, value);
}
