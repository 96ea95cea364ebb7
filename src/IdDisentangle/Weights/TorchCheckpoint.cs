using System.Collections;
using System.Collections.Specialized;
using System.IO.Compression;
using IdDisentangle.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// Files written by PyTorch's <c>torch.save</c>: the zip format (PyTorch 1.6 and later) and the legacy
/// single-stream format. Reading goes through <see cref="PickleReader"/> with an allow-list of the globals such
/// files use (tensor rebuilding, storages, OrderedDict, argparse.Namespace), so only tensors and plain containers
/// come out and nothing in the file is executed. Writing uses TorchSharp.PyBridge's pickler (zip format), which
/// <c>torch.load</c> reads.
/// </summary>
internal static class TorchCheckpoint
{
    static readonly (string Name, ScalarType Type, int Size)[] StorageTypes =
    [
        ("FloatStorage", ScalarType.Float32, 4),
        ("DoubleStorage", ScalarType.Float64, 8),
        ("HalfStorage", ScalarType.Float16, 2),
        ("BFloat16Storage", ScalarType.BFloat16, 2),
        ("LongStorage", ScalarType.Int64, 8),
        ("IntStorage", ScalarType.Int32, 4),
        ("ShortStorage", ScalarType.Int16, 2),
        ("CharStorage", ScalarType.Int8, 1),
        ("ByteStorage", ScalarType.Byte, 1),
        ("BoolStorage", ScalarType.Bool, 1),
        ("UntypedStorage", ScalarType.Byte, 1),
    ];

    sealed record StorageType(ScalarType Type, int Size);

    /// <summary>The globals torch.save files use: storages, tensor and parameter rebuilding, OrderedDict, ...</summary>
    internal static IEnumerable<PickleGlobal> Globals()
    {
        foreach (var (name, type, size) in StorageTypes)
        {
            var st = new StorageType(type, size);
            yield return new PickleGlobal
            {
                Module = "torch",
                Name = name,
                Tag = st,
            };
        }
        yield return new PickleGlobal
        {
            Module = "torch._utils",
            Name = "_rebuild_tensor_v2",
            Call = RebuildTensor,
        };
        yield return new PickleGlobal
        {
            Module = "torch._utils",
            Name = "_rebuild_tensor",
            Call = RebuildTensor,
        };
        yield return new PickleGlobal
        {
            Module = "torch._utils",
            Name = "_rebuild_parameter",
            Call = a => a[0],
        };
        yield return new PickleGlobal
        {
            Module = "torch._utils",
            Name = "_rebuild_parameter_with_state",
            Call = a => a[0],
        };
        yield return new PickleGlobal
        {
            Module = "collections",
            Name = "OrderedDict",
            Call = _ => new PyDict(),
            New = _ => new PyDict(),
        };
        yield return new PickleGlobal
        {
            Module = "torch",
            Name = "Size",
            Call = a => a.Length > 0 && a[0] is PyTuple t ? t : new PyTuple([]),
        };
        yield return PickleGlobal.PlainClass("argparse", "Namespace");
        yield return new PickleGlobal
        {
            Module = "builtins",
            Name = "set",
            Call = a => new HashSet<object?>(a.Length > 0 && a[0] is List<object?> l ? l : []),
        };
        yield return new PickleGlobal
        {
            Module = "torch",
            Name = "device",
            Call = a => string.Join(":", a),
        };
    }

    /// <summary>The storage behind one or more tensors, as a flat tensor of its element type.</summary>
    sealed class Storage(Tensor data)
    {
        public Tensor Data { get; } = data;
    }

    static object RebuildTensor(object?[] a)
    {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        var storage = a[0] as Storage ?? throw new InvalidDataException("tensor without a storage");
        long offset = Convert.ToInt64(a[1]);
        long[] size = ((PyTuple)a[2]!).Items.Select(Convert.ToInt64).ToArray();
        long[] stride = ((PyTuple)a[3]!).Items.Select(Convert.ToInt64).ToArray();
        if (size.Length == 0)
            return storage.Data.narrow(0, offset, 1).reshape([]).clone();
        return storage.Data.as_strided(size, stride, offset).contiguous();
    }

    /// <summary>
    /// <c>torch.storage._load_from_bytes</c>: one storage saved by <c>torch.save</c> in the legacy format (how the
    /// pickles of NVIDIA's persistence module carry their tensors).
    /// </summary>
    internal static object StorageFromBytes(byte[] bytes, string name)
    {
        using var ms = new MemoryStream(bytes, writable: false);
        return LoadLegacy(ms, name) as Storage
            ?? throw new InvalidDataException($"{name}: an embedded torch.save stream that is not a storage");
    }

    /// <summary>Loads the object tree of a <c>torch.save</c> file: dictionaries, lists, tuples, scalars and tensors (on
    /// the CPU).</summary>
    public static object? Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file", path);
        using var fs = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        int n = fs.Read(head);
        fs.Position = 0;
        if (n == 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4)
        {
            try
            {
                return LoadZip(fs, path);
            }
            // System.IO.Compression names no file: a truncated or damaged archive is reported with its path.
            catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: a damaged or truncated PyTorch zip file ({e.Message})", e);
            }
        }
        if (n >= 2 && head[0] == 0x80)
            return LoadLegacy(fs, path);
        throw new InvalidDataException(
            $"{path}: not a PyTorch file (neither the zip format nor the legacy pickle format)"
        );
    }

    static object? LoadZip(Stream stream, string path)
    {
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        var pkl =
            zip.Entries.FirstOrDefault(e =>
                e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1
            ) ?? throw new InvalidDataException($"{path}: zip file without a data.pkl: not a torch.save file");
        string prefix = pkl.FullName[..^"data.pkl".Length];
        var storages = new Dictionary<string, Storage>();
        object? Persistent(object? pid)
        {
            // ('storage', storage_type, key, location, numel)
            if (
                pid is not PyTuple { Count: >= 5 } t
                || t[0] as string != "storage"
                || (t[1] as PickleGlobal)?.Tag is not StorageType type
            )
                throw new InvalidDataException($"{path}: unexpected persistent id {pid}");
            string key = Convert.ToString(t[2], System.Globalization.CultureInfo.InvariantCulture)!;
            if (storages.TryGetValue(key, out var s))
                return s;
            long numel = Convert.ToInt64(t[4]);
            var entry =
                zip.GetEntry(prefix + "data/" + key)
                ?? throw new InvalidDataException($"{path}: missing storage data/{key}");
            if (entry.Length > stream.Length)
                throw new InvalidDataException(
                    $"{path}: storage data/{key} claims {entry.Length} bytes, more than the file holds"
                );
            var bytes = new byte[entry.Length];
            using (var es = entry.Open())
                es.ReadExactly(bytes);
            long count = numel;
            if (count * type.Size > bytes.Length)
                throw new InvalidDataException($"{path}: storage data/{key} is shorter than its {count} elements");
            var data = torch.empty(count, type.Type);
            if (count > 0)
                data.bytes = bytes.AsSpan(0, (int)(count * type.Size));
            s = new Storage(data);
            storages[key] = s;
            return s;
        }
        var reader = new PickleReader(path, Globals(), Persistent);
        using var ps = pkl.Open();
        using var buffered = new BufferedStream(ps, 1 << 16);
        return reader.Load(buffered);
    }

    static object? LoadLegacy(Stream stream, string path)
    {
        var meta = new PickleReader(path, []);
        object? magic = meta.Load(stream);
        if (
            magic is not System.Numerics.BigInteger big
            || big != System.Numerics.BigInteger.Parse("119547037146038801333356")
        )
            throw new InvalidDataException(
                $"{path}: not a PyTorch file (a pickle, but without torch.save's magic number)"
            );
        meta.Load(stream); // protocol version
        meta.Load(stream); // sys_info
        var pending = new Dictionary<string, (StorageType Type, long Numel)>();
        var storages = new Dictionary<string, Storage>();
        object? Persistent(object? pid)
        {
            // ('storage', storage_type, root_key, location, numel, view_metadata)
            if (
                pid is not PyTuple { Count: >= 5 } t
                || t[0] as string != "storage"
                || (t[1] as PickleGlobal)?.Tag is not StorageType type
            )
                throw new InvalidDataException($"{path}: unexpected persistent id {pid}");
            if (t.Count > 5 && t[5] is not null)
                throw new InvalidDataException($"{path}: storage views of the legacy format are not supported");
            string key = Convert.ToString(t[2], System.Globalization.CultureInfo.InvariantCulture)!;
            long claimed = Convert.ToInt64(t[4]);
            if (claimed < 0 || (double)claimed * type.Size > stream.Length)
                throw new InvalidDataException(
                    $"{path}: storage {key} claims {claimed} elements, more than the file holds"
                );
            pending[key] = (type, claimed);
            return storages.TryGetValue(key, out var s)
                ? s
                : storages[key] = new Storage(torch.empty(Convert.ToInt64(t[4]), type.Type));
        }
        var reader = new PickleReader(path, Globals(), Persistent);
        object? result = reader.Load(stream);
        var keys =
            new PickleReader(path, []).Load(stream) as List<object?>
            ?? throw new InvalidDataException($"{path}: missing storage key list");
        var br = new BinaryReader(stream);
        foreach (var k in keys)
        {
            string key = Convert.ToString(k, System.Globalization.CultureInfo.InvariantCulture)!;
            if (stream.Length - stream.Position < 8)
                throw new InvalidDataException($"{path}: truncated before storage {key}");
            long numel = br.ReadInt64();
            if (!pending.TryGetValue(key, out var info))
                throw new InvalidDataException($"{path}: unknown storage {key}");
            if (numel != info.Numel)
                throw new InvalidDataException(
                    $"{path}: storage {key} holds {numel} elements where its tensor says {info.Numel}"
                );
            var bytes = br.ReadBytes((int)(numel * info.Type.Size));
            if (bytes.Length != numel * info.Type.Size)
                throw new InvalidDataException($"{path}: truncated storage {key}");
            if (numel > 0)
                storages[key].Data.bytes = bytes;
        }
        return result;
    }

    /// <summary>
    /// Writes <paramref name="root"/> (string keys; values are tensors, nested dictionaries, numbers or strings) in
    /// PyTorch's zip format. Insertion order of the dictionaries is kept.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, object> root)
    {
        var tree = ToPickleable(root);
        IO.AtomicFile.Write(path, s => TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(s, tree, leaveOpen: true));
    }

    static OrderedDictionary ToPickleable(IReadOnlyDictionary<string, object> d)
    {
        var o = new OrderedDictionary();
        foreach (var (k, v) in d)
            o[k] = v switch
            {
                IReadOnlyDictionary<string, object> nested => ToPickleable(nested),
                IReadOnlyDictionary<string, Tensor> tensors => ToPickleable(
                    tensors.ToDictionary(p => p.Key, p => (object)p.Value)
                ),
                Tensor t => t.detach().cpu().contiguous(),
                _ => v,
            };
        return o;
    }

    /// <summary>Every tensor of a (nested) dictionary, with its key; other values are ignored.</summary>
    public static Dictionary<string, Tensor> Tensors(object? node) =>
        node is PyDict d
            ? d.Where(p => p.Value is Tensor).ToDictionary(p => p.Key.ToString()!, p => (Tensor)p.Value!)
            : [];
}
