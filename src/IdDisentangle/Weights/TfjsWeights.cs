using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// TensorFlow.js weight files: a <c>*-weights_manifest.json</c> (groups of weights, each with name, shape, dtype
/// and optional quantization) and the binary shards it lists, concatenated in manifest order. Quantized entries
/// (uint8/uint16) decode as q * scale + min; float16 entries as IEEE half. Tensors keep TensorFlow's layouts
/// (conv filters [kh,kw,in,out], dense [in,out]).
/// </summary>
internal static class TfjsWeights
{
    public static Dictionary<string, Tensor> Load(string manifestPath)
    {
        if (!File.Exists(manifestPath))
            throw new FileNotFoundException($"{manifestPath}: no such weights manifest", manifestPath);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(manifestPath));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{manifestPath}: not JSON ({e.Message})", e);
        }
        var groups =
            root as JsonArray
            ?? (root as JsonObject)?["weightsManifest"] as JsonArray
            ?? throw new InvalidDataException($"{manifestPath}: not a TensorFlow.js weights manifest");
        string dir = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        return Decode(
            groups,
            shard =>
            {
                // A manifest names its shards beside it: a path that leads elsewhere is refused, never read.
                string path = Path.GetFullPath(Path.Combine(dir, shard));
                if (Path.GetDirectoryName(path) != dir)
                    throw new InvalidDataException(
                        $"{manifestPath}: shard path '{shard}' leaves the manifest's folder"
                    );
                if (!File.Exists(path))
                    throw new FileNotFoundException($"{manifestPath}: missing weight shard {path}", path);
                return File.ReadAllBytes(path);
            },
            manifestPath
        );
    }

    /// <summary>Decodes the weights of manifest <paramref name="groups"/>, reading each shard by its manifest
    /// path.</summary>
    public static Dictionary<string, Tensor> Decode(
        JsonArray groups,
        Func<string, byte[]> readShard,
        string manifestPath
    )
    {
        try
        {
            return DecodeGroups(groups, readShard, manifestPath);
        }
        // A manifest of the wrong shape (a string where a number belongs, a missing field) surfaces as the JSON
        // model's and the runtime's exceptions: one typed error naming the manifest.
        catch (Exception e)
            when (e
                    is InvalidOperationException
                        or FormatException
                        or NullReferenceException
                        or InvalidCastException
                        or OverflowException
                        or ArgumentException
                        or IndexOutOfRangeException
            )
        {
            throw new InvalidDataException(
                $"{manifestPath}: a malformed weights manifest ({e.GetType().Name}: {e.Message})",
                e
            );
        }
    }

    static Dictionary<string, Tensor> DecodeGroups(
        JsonArray groups,
        Func<string, byte[]> readShard,
        string manifestPath
    )
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var group in groups)
        {
            var paths =
                group?["paths"] as JsonArray
                ?? throw new InvalidDataException($"{manifestPath}: weight group without paths");
            byte[] data = paths.SelectMany(p => readShard((string)p!)).ToArray();
            int offset = 0;
            var weights =
                group!["weights"] as JsonArray
                ?? throw new InvalidDataException($"{manifestPath}: weight group without weights");
            foreach (var w in weights)
            {
                string name = (string)w!["name"]!;
                long[] shape = (w["shape"] as JsonArray)!.Select(e => (long)(double)e!).ToArray();
                // Every element takes at least a byte of the shards: a shape claiming more is refused before the
                // allocation it would cause.
                double claimed = shape.Aggregate(1.0, (a, b) => a * b);
                if (shape.Any(d => d < 0) || claimed > data.Length - offset)
                    throw new InvalidDataException(
                        $"{manifestPath}: {name} has shape [{string.Join(",", shape)}], more than the shards hold"
                    );
                long count = (long)claimed;
                string dtype = (string)w["dtype"]!;
                // int32 entries are graph constants (shapes, slice bounds) that converted TF graphs carry along; they
                // are
                // decoded so the offsets stay right and returned as float values.
                if (dtype is not ("float32" or "int32"))
                    throw new InvalidDataException(
                        $"{manifestPath}: {name} has dtype {dtype}; only float32 and int32 weights are supported"
                    );
                float[] values = new float[count];
                if (w["quantization"] is JsonObject q)
                {
                    string qtype = (string)q["dtype"]!;
                    // TensorFlow.js dequantizes in double precision, then stores float32.
                    double scale = q["scale"] is { } sc ? (double)sc : 1,
                        min = q["min"] is { } mn ? (double)mn : 0;
                    switch (qtype)
                    {
                        case "uint8":
                            Need(data, offset, count, manifestPath, name);
                            for (long i = 0; i < count; i++)
                                values[i] = (float)(data[offset + i] * scale + min);
                            offset += (int)count;
                            break;
                        case "uint16":
                            Need(data, offset, count * 2, manifestPath, name);
                            for (long i = 0; i < count; i++)
                                values[i] = (float)(BitConverter.ToUInt16(data, offset + (int)(2 * i)) * scale + min);
                            offset += (int)(count * 2);
                            break;
                        case "float16":
                            Need(data, offset, count * 2, manifestPath, name);
                            for (long i = 0; i < count; i++)
                                values[i] = (float)BitConverter.ToHalf(data, offset + (int)(2 * i));
                            offset += (int)(count * 2);
                            break;
                        default:
                            throw new InvalidDataException(
                                $"{manifestPath}: {name} uses unsupported quantization {qtype}"
                            );
                    }
                }
                else if (dtype == "int32")
                {
                    Need(data, offset, count * 4, manifestPath, name);
                    for (long i = 0; i < count; i++)
                        values[i] = BitConverter.ToInt32(data, offset + (int)(4 * i));
                    offset += (int)(count * 4);
                }
                else
                {
                    Need(data, offset, count * 4, manifestPath, name);
                    Buffer.BlockCopy(data, offset, values, 0, (int)(count * 4));
                    offset += (int)(count * 4);
                }
                if (dtype == "int32")
                    for (long i = 0; i < count; i++)
                        values[i] = MathF.Round(values[i]);
                result[name] = torch.tensor(values).reshape(shape);
            }
            if (offset != data.Length)
                throw new InvalidDataException(
                    $"{manifestPath}: the shards hold {data.Length} bytes but the manifest describes {offset}"
                );
        }
        return result;
    }

    static void Need(byte[] data, int offset, long bytes, string file, string name)
    {
        if (offset + bytes > data.Length)
            throw new InvalidDataException($"{file}: weight data ends before {name}");
    }

    /// <summary>A TensorFlow conv filter [kh,kw,in,out] as a PyTorch one [out,in,kh,kw].</summary>
    public static Tensor ConvFilter(Tensor tf) => tf.permute(3, 2, 0, 1).contiguous();

    /// <summary>A TensorFlow depthwise filter [kh,kw,in,mult] as a PyTorch grouped one [in*mult,1,kh,kw].</summary>
    public static Tensor DepthwiseFilter(Tensor tf) =>
        tf.permute(2, 3, 0, 1).reshape(tf.shape[2] * tf.shape[3], 1, tf.shape[0], tf.shape[1]).contiguous();
}
