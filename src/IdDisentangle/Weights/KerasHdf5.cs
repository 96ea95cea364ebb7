using PureHDF;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>One layer of a Keras HDF5 file: its name and its weights in the file's order.</summary>
internal sealed record KerasLayer(string Name, IReadOnlyList<(string Name, Tensor Value)> Weights);

/// <summary>
/// The contents of a Keras HDF5 file, read with PureHDF: <c>model.save_weights</c> files (root attribute
/// <c>layer_names</c>, each layer group's <c>weight_names</c>) and complete model files (the same under
/// <c>model_weights</c>, plus the <c>model_config</c> JSON). Weights keep the file's order, which is how Keras
/// assigns them: by position among the layers that have weights, and by position inside a layer.
/// </summary>
internal sealed class KerasHdf5File
{
    public required string Path { get; init; }
    public required IReadOnlyList<KerasLayer> Layers { get; init; }

    /// <summary>The model's architecture (complete model files only).</summary>
    public string? ModelConfig { get; init; }

    /// <summary>The layers that hold weights, in file order.</summary>
    public IEnumerable<KerasLayer> WeightedLayers => Layers.Where(l => l.Weights.Count > 0);

    /// <summary>Every weight by its full name (as in weight_names).</summary>
    public IEnumerable<(string Name, Tensor Value)> AllWeights => Layers.SelectMany(l => l.Weights);

    /// <summary>The 8 bytes an HDF5 file starts with.</summary>
    public static ReadOnlySpan<byte> Signature => [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

    public static bool IsHdf5(string path)
    {
        Span<byte> head = stackalloc byte[8];
        using var fs = File.OpenRead(path);
        return fs.Read(head) == 8 && head.SequenceEqual(Signature);
    }

    public static KerasHdf5File Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file", path);
        if (!IsHdf5(path))
            throw new InvalidDataException($"{path}: not an HDF5 file");
        var bytes = File.ReadAllBytes(path);
        Hdf5Precheck.Check(path, bytes);
        try
        {
            return ReadKeras(path, bytes);
        }
        // PureHDF reports a damaged or truncated file with its own and the runtime's exceptions: one typed error here.
        catch (Exception e)
            when (e is not (FileNotFoundException or OperationCanceledException)
                && !e.Message.StartsWith(path, StringComparison.Ordinal)
            )
        {
            throw new InvalidDataException(
                $"{path}: a damaged or truncated HDF5 file ({e.GetType().Name}: {e.Message})",
                e
            );
        }
    }

    static KerasHdf5File ReadKeras(string path, byte[] bytes)
    {
        // PureHDF reads the bytes the walk checked, not the file a second time.
        using var stream = new MemoryStream(bytes, writable: false);
        using var file = H5File.Open(stream);
        IH5Group root = file;
        string? config = file.AttributeExists("model_config") ? ReadString(file.Attribute("model_config")) : null;
        if (file.LinkExists("model_weights"))
            root = file.Group("model_weights");
        if (!root.AttributeExists("layer_names"))
            throw new InvalidDataException(
                $"{path}: an HDF5 file without Keras layer_names (not a Keras weights or model file)"
            );
        var layers = new List<KerasLayer>();
        foreach (string layerName in ReadStrings(root.Attribute("layer_names")))
        {
            var group = root.Group(layerName);
            var weights = new List<(string, Tensor)>();
            if (group.AttributeExists("weight_names"))
                foreach (string w in ReadStrings(group.Attribute("weight_names")))
                {
                    var ds = group.Dataset(w);
                    weights.Add((w, ReadTensor(ds, path, bytes.Length, $"{layerName}/{w}")));
                }
            layers.Add(new KerasLayer(layerName, weights));
        }
        return new KerasHdf5File
        {
            Path = path,
            Layers = layers,
            ModelConfig = config,
        };
    }

    static Tensor ReadTensor(IH5Dataset ds, string path, long fileLength, string name)
    {
        long[] shape = ds.Space.Dimensions.Select(d => (long)d).ToArray();
        var type = ds.Type;
        // A damaged or hostile header can claim any shape: refuse what the file cannot hold before allocating it.
        double bytes = shape.Aggregate(1.0, (n, d) => n * d) * type.Size;
        if (bytes > fileLength)
            throw new InvalidDataException(
                $"{path}: weight {name} claims [{string.Join(",", shape)}] ({bytes:E2} bytes), more than the file holds"
            );
        Tensor t = (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FloatingPoint, 4) => torch.tensor(ds.Read<float[]>()),
            (H5DataTypeClass.FloatingPoint, 8) => torch.tensor(ds.Read<double[]>()).to(ScalarType.Float32),
            (H5DataTypeClass.FixedPoint, 8) => torch.tensor(ds.Read<long[]>()),
            (H5DataTypeClass.FixedPoint, 4) => torch.tensor(ds.Read<int[]>()).to(ScalarType.Int64),
            _ => throw new InvalidDataException(
                $"{path}: weight {name} has an unsupported HDF5 type ({type.Class}, {type.Size} bytes)"
            ),
        };
        return shape.Length == 0 ? t.reshape([]) : t.reshape(shape);
    }

    static string[] ReadStrings(IH5Attribute a)
    {
        // h5py writes names as fixed-length byte strings or variable-length strings; PureHDF reads both as string[].
        // Keras stores an empty name list as an empty float array.
        if (
            a.Space.Dimensions.Aggregate(1UL, (x, y) => x * y) == 0
            || a.Type.Class is not (H5DataTypeClass.String or H5DataTypeClass.VariableLength)
        )
            return [];
        CheckAttributeSize(a);
        var values = a.Read<string[]>();
        return values.Select(v => v.TrimEnd('\0')).ToArray();
    }

    /// <summary>An attribute whose header claims more bytes than the file holds is refused before PureHDF
    /// allocates them.</summary>
    static void CheckAttributeSize(IH5Attribute a)
    {
        double bytes = a.Space.Dimensions.Aggregate(1.0, (x, y) => x * y) * Math.Max(1, (double)a.Type.Size);
        if (bytes > MaxAttributeBytes)
            throw new InvalidDataException($"attribute {a.Name} claims {bytes:F0} bytes");
    }

    /// <summary>Keras's attributes are lists of names and a JSON model configuration: megabytes at most.</summary>
    const double MaxAttributeBytes = 64 << 20;

    static string ReadString(IH5Attribute a)
    {
        CheckAttributeSize(a);
        if (a.Space.Rank == 0)
            return a.Read<string>().TrimEnd('\0');
        return string.Concat(a.Read<string[]>());
    }
}
