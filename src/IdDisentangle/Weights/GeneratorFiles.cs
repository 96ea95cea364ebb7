using IdDisentangle.Models;

namespace IdDisentangle.Weights;

/// <summary>
/// Opens a generator weight file by its content, not its extension: PyTorch files (zip or legacy) hold a
/// StyleGAN2 in the rosinality layout; Python pickles (NVIDIA's dnnlib Networks) and HDF5 files (the TF2 port's
/// Keras weights) a StyleGAN (v1).
/// </summary>
internal static class GeneratorFiles
{
    public enum Format
    {
        PyTorchZip,
        PyTorchLegacy,
        Pickle,
        Hdf5,
        Unknown,
    }

    /// <summary>The environment variable naming the default generator file.</summary>
    public const string EnvironmentVariable = "IDDIS_GENERATOR";

    /// <summary>The generator the user chose: <paramref name="given"/>, else $IDDIS_GENERATOR, else null.</summary>
    public static string? Default(string? given = null)
    {
        string? path = !string.IsNullOrWhiteSpace(given)
            ? given
            : Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(path) ? null : path;
    }

    public static Format Sniff(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such generator file", path);
        Span<byte> head = stackalloc byte[16];
        int n;
        using (var fs = File.OpenRead(path))
            n = fs.Read(head);
        if (n >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4)
            return Format.PyTorchZip;
        if (n >= 8 && head[..8].SequenceEqual(KerasHdf5File.Signature))
            return Format.Hdf5;
        // torch.save's legacy format starts with a pickled magic number: PROTO 2, LONG1 of 10 bytes.
        if (n >= 4 && head[0] == 0x80 && head[2] == 0x8a && head[3] == 0x0a)
            return Format.PyTorchLegacy;
        if (n >= 2 && head[0] == 0x80)
            return Format.Pickle;
        return Format.Unknown;
    }

    public static IStyleGenerator Load(string path, out GeneratorLoadReport report)
    {
        switch (Sniff(path))
        {
            case Format.PyTorchZip:
            case Format.PyTorchLegacy:
                return StyleGan2Weights.Load(path, out report);
            case Format.Pickle:
                var root = NvidiaPickle.Read(path);
                var stylegan2 = NvidiaStyleGan2Weights.TryLoad(path, root, out var nvidia);
                if (stylegan2 is not null)
                {
                    report = nvidia!;
                    return stylegan2;
                }
                return StyleGan1Weights.Load(path, out report, root);
            case Format.Hdf5:
                return StyleGan1Weights.Load(path, out report);
            default:
                throw new InvalidDataException(
                    $"{path}: not a generator file this tool reads (PyTorch .pt in the rosinality StyleGAN2 layout, "
                        + "NVIDIA's StyleGAN2 and StyleGAN pickles, or the StyleGAN TF2 port's Keras HDF5 weights)"
                );
        }
    }
}
