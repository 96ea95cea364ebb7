using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>A weight file whose tensors do not fit the network: names the file and the offending keys.</summary>
internal sealed class WeightMismatchException(string message) : IOException(message);

/// <summary>Strict copying of named tensors into a module, with errors that say exactly what does not fit.</summary>
internal static class StateDicts
{
    /// <summary>The module's state dict (on the CPU, contiguous) as a safetensors file, written atomically.</summary>
    public static void SaveSafetensors(nn.Module module, string path)
    {
        var sd = module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().cpu().contiguous());
        IO.AtomicFile.Write(path, s => TorchSharp.PyBridge.Safetensors.SaveStateDict(s, sd, leaveOpen: true));
    }

    static readonly Dictionary<string, int> SafetensorsDtypeSizes = new()
    {
        ["F64"] = 8,
        ["F32"] = 4,
        ["F16"] = 2,
        ["BF16"] = 2,
        ["I64"] = 8,
        ["I32"] = 4,
        ["I16"] = 2,
        ["I8"] = 1,
        ["U8"] = 1,
        ["BOOL"] = 1,
    };

    /// <summary>
    /// The tensors of a safetensors file. Its header is checked first, as the safetensors library does: a length
    /// within the file, JSON naming known dtypes, and each tensor's byte range inside the data and exactly the size
    /// its shape needs; a file that fails is refused, naming it, before anything is allocated.
    /// </summary>
    public static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file", path);
        CheckSafetensorsHeader(path);
        try
        {
            return TorchSharp.PyBridge.Safetensors.LoadStateDict(path);
        }
        catch (Exception e) when (e is not (IOException or OutOfMemoryException))
        {
            throw new InvalidDataException($"{path}: a damaged safetensors file ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Loads a safetensors file into the module strictly (<see cref="Assign"/>).</summary>
    public static void LoadSafetensors(nn.Module module, string path)
    {
        var tensors = ReadSafetensors(path);
        try
        {
            using var noGrad = torch.no_grad();
            Assign(module, tensors, path);
        }
        finally
        {
            foreach (var t in tensors.Values)
                t.Dispose();
        }
    }

    static void CheckSafetensorsHeader(string path)
    {
        long length = new FileInfo(path).Length;
        InvalidDataException Bad(string problem) => new($"{path}: not a valid safetensors file ({problem})");
        using var fs = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || fs.Read(prefix) != 8)
            throw Bad("shorter than its 8-byte header length");
        ulong headerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(length - 8) || headerLength > 100_000_000)
            throw Bad($"a header of {headerLength} bytes in a file of {length}");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        long dataLength = length - 8 - (long)headerLength;
        System.Text.Json.JsonDocument doc;
        try
        {
            doc = System.Text.Json.JsonDocument.Parse(header);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw Bad($"its header is not JSON: {e.Message}");
        }
        using (doc)
            try
            {
                CheckSafetensorsEntries(doc, dataLength, Bad);
            }
            // A header that parses but holds invalid UTF-8 in a name fails when the name is read.
            catch (InvalidOperationException e)
            {
                throw Bad($"its header is not valid UTF-8 JSON: {e.Message}");
            }
    }

    static void CheckSafetensorsEntries(
        System.Text.Json.JsonDocument doc,
        long dataLength,
        Func<string, InvalidDataException> bad
    )
    {
        if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
            throw bad("its header is not a JSON object");
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
                continue;
            var t = entry.Value;
            if (
                t.ValueKind != System.Text.Json.JsonValueKind.Object
                || !t.TryGetProperty("dtype", out var dtype)
                || dtype.ValueKind != System.Text.Json.JsonValueKind.String
                || !SafetensorsDtypeSizes.TryGetValue(dtype.GetString()!, out int size)
                || !t.TryGetProperty("shape", out var shape)
                || shape.ValueKind != System.Text.Json.JsonValueKind.Array
                || !t.TryGetProperty("data_offsets", out var offsets)
                || offsets.ValueKind != System.Text.Json.JsonValueKind.Array
                || offsets.GetArrayLength() != 2
            )
                throw bad($"tensor '{entry.Name}' lacks a known dtype, a shape or two data offsets");
            double elements = 1;
            foreach (var d in shape.EnumerateArray())
            {
                if (!d.TryGetInt64(out long dim) || dim < 0)
                    throw bad($"tensor '{entry.Name}' has a dimension that is not a non-negative integer");
                elements *= dim;
            }
            if (
                !offsets[0].TryGetInt64(out long begin)
                || !offsets[1].TryGetInt64(out long end)
                || begin < 0
                || end < begin
                || end > dataLength
            )
                throw bad($"tensor '{entry.Name}' has data offsets outside the {dataLength} data bytes");
            if (elements * size != end - begin)
                throw bad($"tensor '{entry.Name}' needs {elements * size} bytes but has {end - begin}");
        }
    }

    /// <summary>
    /// Copies every tensor of <paramref name="source"/> into the module's parameters and persistent buffers.
    /// Missing keys, unexpected keys and shape mismatches are all reported together, naming <paramref name="file"/>.
    /// </summary>
    public static void Assign(nn.Module module, IReadOnlyDictionary<string, Tensor> source, string file)
    {
        var target = module.state_dict();
        var missing = target.Keys.Where(k => !source.ContainsKey(k)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k)).ToList();
        var mismatched = target
            .Keys.Where(source.ContainsKey)
            .Where(k => !target[k].shape.SequenceEqual(source[k].shape))
            .Select(k =>
                $"{k} (file [{string.Join(",", source[k].shape)}], network [{string.Join(",", target[k].shape)}])"
            )
            .ToList();
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0)
                parts.Add($"missing {missing.Count} key(s): {Summarise(missing)}");
            if (unexpected.Count > 0)
                parts.Add($"unexpected {unexpected.Count} key(s): {Summarise(unexpected)}");
            if (mismatched.Count > 0)
                parts.Add($"{mismatched.Count} shape mismatch(es): {Summarise(mismatched)}");
            throw new WeightMismatchException($"{file}: does not fit {module.GetName()}: {string.Join("; ", parts)}");
        }
        using var _ = torch.no_grad();
        foreach (var (k, t) in target)
            t.copy_(source[k]);
    }

    static string Summarise(IReadOnlyList<string> items, int max = 8) =>
        string.Join(", ", items.Take(max)) + (items.Count > max ? $", ... ({items.Count - max} more)" : "");
}
