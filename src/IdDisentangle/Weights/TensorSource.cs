using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// Named tensors of a foreign weight file being mapped onto a network: <see cref="Take"/> fetches one (a missing
/// name is an error naming the file), <see cref="RequireAllUsed"/> then refuses files with weights nothing took.
/// </summary>
internal sealed class TensorSource(IReadOnlyDictionary<string, Tensor> tensors, string file)
{
    readonly HashSet<string> _used = [];

    public string File { get; } = file;

    public bool Has(string name) => tensors.ContainsKey(name);

    public Tensor Take(string name)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new WeightMismatchException($"{File}: missing weight {name}");
        _used.Add(name);
        return t;
    }

    public void RequireAllUsed()
    {
        var unused = tensors.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unused.Count > 0)
            throw new WeightMismatchException(
                $"{File}: unexpected weights {string.Join(", ", unused.Take(8))}{(unused.Count > 8 ? $", ... ({unused.Count - 8} more)" : "")}"
            );
    }
}
