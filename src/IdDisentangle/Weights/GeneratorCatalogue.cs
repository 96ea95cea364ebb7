using System.Security.Cryptography;
using IdDisentangle.IO;
using IdDisentangle.Runtime;

namespace IdDisentangle.Weights;

/// <summary>A published generator file: where NVIDIA serves it, its size and SHA-256, and its licence.</summary>
internal sealed record CatalogueGenerator(
    string Name,
    string Url,
    long Bytes,
    string Sha256,
    string Description,
    string Licence,
    string LicenceUrl
)
{
    /// <summary>The file's name, as published.</summary>
    public string FileName => Path.GetFileName(new Uri(Url).AbsolutePath);
}

/// <summary>
/// Real FFHQ generators, downloaded on request into the model store (generators/FILE) with their size and SHA-256
/// pinned; each hash was found in independent public copies of the file. A download is resumable (HTTP range) and
/// moves into the store only when size and hash match. <see cref="MirrorVariable"/> replaces the host part
/// (BASE/FILE) for mirrors.
/// </summary>
internal static class GeneratorCatalogue
{
    public const string MirrorVariable = "IDDIS_GENERATOR_MIRROR";

    const string NvidiaNonCommercial = "NVIDIA Source Code License-NC (non-commercial use only)";

    public static IReadOnlyList<CatalogueGenerator> Entries { get; } =
    [
        new(
            "ffhq-1024-ada",
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl",
            381_624_121,
            "a205a346e86a9ddaae702e118097d014b7b8bd719491396a162cca438f2f524c",
            "FFHQ 1024x1024, StyleGAN2-ADA (stylegan2-ada-pytorch snapshot)",
            NvidiaNonCommercial,
            "https://github.com/NVlabs/stylegan2-ada-pytorch/blob/main/LICENSE.txt"
        ),
        new(
            "ffhq-1024-config-f",
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
            381_673_535,
            "adf127ea7bb8a7788c8bdeda3c9937f7310b669b09ecf799ca53a631ff46948d",
            "FFHQ 1024x1024, StyleGAN2 config-f (TensorFlow pickle)",
            NvidiaNonCommercial,
            "https://github.com/NVlabs/stylegan2/blob/master/LICENSE.txt"
        ),
    ];

    public static CatalogueGenerator? Find(string name) =>
        Entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Where the store keeps a downloaded generator.</summary>
    public static string PathIn(ModelStore store, string fileName) => Path.Combine(store.Root, "generators", fileName);

    /// <summary>The entry's URL, or the same file under $IDDIS_GENERATOR_MIRROR.</summary>
    public static string UrlOf(CatalogueGenerator entry) =>
        Environment.GetEnvironmentVariable(MirrorVariable) is { Length: > 0 } mirror
            ? $"{mirror.TrimEnd('/')}/{entry.FileName}"
            : entry.Url;

    /// <summary>
    /// A generator file: <paramref name="nameOrPath"/> itself when it is a file, else the catalogue entry of that
    /// name from the store, fetched on first use through the store's fetch policy (offline: an error saying how).
    /// </summary>
    public static string Resolve(
        string nameOrPath,
        ModelStore store,
        Action<string>? log = null,
        CancellationToken cancellation = default
    )
    {
        if (File.Exists(nameOrPath))
            return nameOrPath;
        var entry = Find(nameOrPath);
        if (entry is null)
            throw new FileNotFoundException(
                $"{nameOrPath}: no such generator file, nor a generator of the catalogue "
                    + $"({string.Join(", ", Entries.Select(e => e.Name))})",
                nameOrPath
            );
        string path = PathIn(store, entry.FileName);
        if (File.Exists(path))
            return path;
        return store.FetchMissing(
            $"generator {entry.Name} ({entry.Bytes / 1048576.0:F0} MiB, {entry.Licence})",
            $"run 'iddis models fetch --generator {entry.Name}', or download {entry.Url} and put it at {path}",
            progress => Fetch(entry, store, log, progress, cancellation)
        );
    }

    /// <summary>Downloads a catalogue entry into the store (nothing when it is there already); returns its path.</summary>
    public static string Fetch(
        CatalogueGenerator entry,
        ModelStore store,
        Action<string>? log = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellation = default
    )
    {
        string path = PathIn(store, entry.FileName);
        if (File.Exists(path))
            return path;
        log?.Invoke($"{entry.Name}: {entry.Description}; licence: {entry.Licence}, {entry.LicenceUrl}");
        Download(UrlOf(entry), entry.Bytes, entry.Sha256, path, progress, cancellation);
        return path;
    }

    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="destination"/>, resuming an interrupted download, and moves
    /// it there only when its size (when given) and SHA-256 match; otherwise nothing is stored and the error names
    /// both hashes.
    /// </summary>
    public static void Download(
        string url,
        long? bytes,
        string sha256,
        string destination,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellation = default
    )
    {
        if (sha256.Length != 64 || !sha256.All(Uri.IsHexDigit))
            throw new ArgumentException($"{sha256}: not a SHA-256 (64 hexadecimal digits)");
        string staged = destination + ".unverified";
        HttpDownload.Download(url, staged, progress, cancellation: cancellation);
        long length = new FileInfo(staged).Length;
        string actual = FileHash.Sha256(staged);
        if (
            (bytes is { } expected && length != expected)
            || !string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase)
        )
        {
            File.Delete(staged);
            throw new InvalidDataException(
                $"{url}: {length} bytes with SHA-256 {actual}, expected "
                    + (bytes is null ? "" : $"{bytes} bytes with ")
                    + $"SHA-256 {sha256.ToLowerInvariant()}; nothing was stored"
            );
        }
        File.Move(staged, destination, overwrite: true);
    }
}
