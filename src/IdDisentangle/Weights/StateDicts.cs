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
