using System.Diagnostics;
using System.Text;
using IdDisentangle.Data;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Networks;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using IdDisentangle.Training;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Reporting;

internal sealed record DemoOptions
{
    public string OutDir { get; init; } = Path.Combine("results", "demo");

    /// <summary>A generator file; null: $IDDIS_GENERATOR, else a small untrained StyleGAN2.</summary>
    public string? Generator { get; init; }
    public long Steps { get; init; } = 150;
    public int Images { get; init; } = 240;
    public int TestImages { get; init; } = 40;
    public int BatchSize { get; init; } = 6;

    /// <summary>Resolution the attribute backbone sees; 0: its native one, except 149 px with the untrained 64-px
    /// generator (keeps the demo within 10 minutes on 2 cores).</summary>
    public int AttrInputSize { get; init; }

    /// <summary>
    /// Resolution the demo works at (the generator's images area-downsampled); 0: the generator's own up to 256, and
    /// 256 (the paper's) for larger generators such as NVIDIA's 1024 FFHQ models.
    /// </summary>
    public int OutputSize { get; init; }
    public string? Photos { get; init; }

    /// <summary>
    /// Real photos for the part that needs no generator: group photos at the top level and labelled face photos in
    /// people/NAME/ (the CLI passes the bundled ones); null leaves that part out.
    /// </summary>
    public string? RealFacesDir { get; init; }
    public string? ModelsDir { get; init; }
    public string? Device { get; init; }
    public int Threads { get; init; }

    /// <summary>What the generator computes in when it renders the data set and the results (training is
    /// fp32).</summary>
    public ComputePrecision Precision { get; init; }

    /// <summary>The command line that does a stage by hand, shown in the report (none by default).</summary>
    public Func<DemoWork, string> DescribeCommand { get; init; } = _ => "";
}

/// <summary>What a stage of the demo does, in the library's terms; the CLI turns it into the command that does it by
/// hand.</summary>
internal abstract record DemoWork
{
    /// <summary>Fetch and convert every pretrained network into the model store.</summary>
    public sealed record FetchNetworks(string? ModelsDir) : DemoWork;

    /// <summary>Choose the generator (given, from the environment, or an untrained one written by the demo).</summary>
    public sealed record ChooseGenerator : DemoWork;

    public sealed record GenerateData(
        string Generator,
        DatasetGenerationOptions Options,
        int OutputSize,
        ComputePrecision Precision
    ) : DemoWork;

    public sealed record Train(TrainingConfig Config) : DemoWork;

    /// <summary>Identity swaps of held-out images with a run's checkpoint.</summary>
    public sealed record Infer(string RunDir, string OutDir, ComputePrecision Precision) : DemoWork;

    public sealed record Report(string OutDir) : DemoWork;

    /// <summary>Detection, landmarks, alignment and identity on real photos.</summary>
    public sealed record RealFaces(string Dir, string? Photos) : DemoWork;
}

/// <summary>One stage of the demo: what it did, how long it took, and the command that does it by hand.</summary>
internal sealed record DemoStage(string Name, string Summary, double Seconds, string Command);

/// <summary>
/// The whole method end to end: fetch the registry-hosted networks, pick a generator, generate data, train, infer
/// on held-out images (and photos), and write a self-contained HTML report and a Markdown one. A second run reuses
/// what is there (resumed generation and training); each stage leaves a consistent folder when interrupted.
/// </summary>
internal sealed class Demo(DemoOptions o, Action<string> log, Action<string, double, double>? progress = null)
{
    public const string UntrainedDisclaimer =
        "This demo ran with an UNTRAINED StyleGAN2 (deterministic random weights): it does not produce faces, so the "
        + "pictures below are coloured textures and the identity and landmark numbers mean little. Use a pretrained FFHQ "
        + "generator for real results: the FFHQ 256x256 StyleGAN2 checkpoint of pSp/e4e/the paper's PyTorch port "
        + "(stylegan2-ffhq-256.pt, '550000.pt') or NVIDIA's FFHQ 1024 config-f converted to rosinality's layout "
        + "(stylegan2-ffhq-config-f.pt), published on the authors' Google Drive and Hugging Face pages; then run "
        + "'iddis demo --generator FILE' (or set IDDIS_GENERATOR=FILE). With internet access, "
        + "'iddis demo --generator ffhq-1024-ada' fetches NVIDIA's FFHQ generator (non-commercial licence) and works "
        + "at 256.";

    const string GeneratorDir = "generator",
        DatasetDir = "dataset",
        RunName = "train",
        SwapsDir = "swaps";
    const string HtmlReport = "index.html",
        MarkdownReport = "report.md";

    readonly List<DemoStage> _stages = [];

    /// <summary>Deletes what a demo run left in <paramref name="outDir"/>, so the next one starts over.</summary>
    public static void Clear(string outDir)
    {
        foreach (
            var p in new[] { DatasetDir, RunName, SwapsDir, GeneratorDir, HtmlReport, MarkdownReport }.Select(p =>
                Path.Combine(outDir, p)
            )
        )
        {
            if (Directory.Exists(p))
                Directory.Delete(p, true);
            else if (File.Exists(p))
                File.Delete(p);
        }
    }

    /// <summary>The Markdown report's path in <paramref name="outDir"/>.</summary>
    public static string MarkdownReportPath(string outDir) => Path.Combine(outDir, MarkdownReport);

    internal static string HtmlReportPath(string outDir) => Path.Combine(outDir, HtmlReport);

    public IReadOnlyList<DemoStage> Stages => _stages;

    /// <summary>The report's sections, in order: title, anchor in index.html, what it shows.</summary>
    public IReadOnlyList<(string Title, string Anchor, string Summary)> Sections { get; private set; } = [];
    public bool UntrainedGenerator { get; private set; }

    public string Run(CancellationToken cancellation = default)
    {
        ComputePrecisions.EnsureFast(o.Precision, TorchRuntime.ResolveDevice(o.Device));
        Directory.CreateDirectory(o.OutDir);
        TorchRuntime.SetThreads(o.Threads);
        var store = new ModelStore(o.ModelsDir) { Observer = new StageFetchObserver("fetch networks", log, progress) };

        // Everything later stages and the commands a user tries next need, dlib's model for photos included.
        Stage(
            "fetch networks",
            new DemoWork.FetchNetworks(o.ModelsDir),
            () =>
            {
                var converted = PretrainedNetworks.FetchAll(store, log: log, cancellation: cancellation);
                return $"model store {store.Root} complete ({converted.Count} converted now)";
            }
        );

        RealFacesResult? realFaces = null;
        if (o.RealFacesDir is not null)
            Stage(
                "real faces",
                new DemoWork.RealFaces(o.RealFacesDir, o.Photos),
                () =>
                {
                    var dirs = new List<string> { o.RealFacesDir };
                    if (o.Photos is not null)
                        dirs.Add(o.Photos);
                    realFaces = RealFaces.Run(
                        dirs,
                        Path.Combine(o.RealFacesDir, "people"),
                        store,
                        TorchRuntime.ResolveDevice(o.Device),
                        log,
                        cancellation
                    );
                    var m = realFaces.Matrix;
                    return $"{realFaces.Annotated.Sum(a => a.Faces)} faces in {realFaces.Annotated.Count} photos; "
                        + $"identity matrix of {m.Labels.Count} photos of {m.People.Distinct().Count()} people: "
                        + $"{m.Accuracy * 100:F1}% of {m.Pairs().Count()} pairs decided right at {m.Threshold}";
                }
            );

        string generator = "";
        Stage(
            "generator",
            new DemoWork.ChooseGenerator(),
            () =>
            {
                string? given = GeneratorFiles.Default(o.Generator);
                if (given is not null)
                {
                    generator = GeneratorCatalogue.Resolve(given, store, log, cancellation);
                    return $"pretrained generator {given}";
                }
                UntrainedGenerator = true;
                generator = Path.Combine(o.OutDir, GeneratorDir, "untrained_stylegan2_64.pt");
                if (!File.Exists(generator))
                {
                    using var rng = new torch.Generator(20201201);
                    var config = StyleGan2Config.Standard(64, mappingLayers: 4, divisor: 8);
                    using var g = new StyleGan2Generator(config, rng);
                    using (torch.no_grad())
                        g.MeanLatent = g.Map(torch.randn([10_000, g.StyleDim], generator: rng)).mean([0]);
                    StyleGan2Weights.Save(g, generator);
                }
                return "UNTRAINED StyleGAN2, 64x64, deterministic random weights (not a face model)";
            }
        );

        int native;
        using (var g = (IDisposable)GeneratorFiles.Load(generator, out _))
            native = ((IStyleGenerator)g).Resolution;
        int outputSize = o.OutputSize > 0 ? o.OutputSize : Math.Min(native, 256);
        string dataset = Path.Combine(o.OutDir, DatasetDir);
        var generation = new DatasetGenerationOptions
        {
            OutDir = dataset,
            NumImages = o.Images,
            Truncation = 0.7,
        };
        Stage(
            "generate data",
            new DemoWork.GenerateData(generator, generation, outputSize == native ? 0 : outputSize, o.Precision),
            () =>
            {
                using var g = (IDisposable)NetworkChoice.LoadGenerator(generator, torch.CPU, out _, outputSize);
                ((IStyleGenerator)g).UsePrecision(o.Precision);
                long written = DatasetGenerator.Generate(
                    (IStyleGenerator)g,
                    generation,
                    (k, _) => progress?.Invoke("generate data", k + 1, o.Images),
                    cancellation
                );
                return $"{o.Images} images ({written} written now) in {dataset}";
            }
        );

        bool smallImages = outputSize < MsSsim.MinimumSize;
        int attrInput =
            o.AttrInputSize > 0 ? o.AttrInputSize
            : UntrainedGenerator ? 149
            : 0;
        var config = new TrainingConfig
        {
            Name = RunName,
            DatasetDir = dataset,
            GeneratorPath = generator,
            ResultsDir = o.OutDir,
            BatchSize = o.BatchSize,
            NumSteps = o.Steps,
            TrainDataSize = o.Images - o.TestImages,
            TestSize = Math.Clamp(o.TestImages / o.BatchSize, 1, 4),
            TestFrequency = (int)Math.Max(1, o.Steps / 4),
            PixelLoss = smallImages ? PixelLoss.L1 : PixelLoss.MsSsimL1,
            AttrInputSize = attrInput,
            FaceCrop = UntrainedGenerator ? "none" : "ffhq",
            OutputSize = outputSize == native ? 0 : outputSize,
            ModelsDir = o.ModelsDir,
            Device = o.Device,
            Threads = o.Threads,
        };
        Stage(
            "train",
            new DemoWork.Train(config),
            () =>
            {
                using var trainer = new Trainer(config, log);
                var r = trainer.Run(resume: true, cancellation, (n, _) => progress?.Invoke("train", n + 1, o.Steps));
                return $"{r.LastStep} steps ({r.StopReason})";
            }
        );

        string swaps = Path.Combine(o.OutDir, SwapsDir);
        Stage(
            "infer",
            new DemoWork.Infer(config.RunDir, swaps, o.Precision),
            () =>
            {
                using var model = DisentanglementModel.FromRun(
                    config.RunDir,
                    checkpoint: RunFolder.Last,
                    modelsDir: o.ModelsDir,
                    device: o.Device
                );
                model.Generator.UsePrecision(o.Precision);
                var layout = new DatasetLayout(dataset);
                var held = layout.Indices().Where(k => k >= config.TrainDataSize).Take(8).ToList();
                var inputs = held.Select(k => new InputImage(
                        layout.ImagePath(k),
                        $"{k:00000}",
                        ImageIO.Read(layout.ImagePath(k))
                    ))
                    .ToList();
                int ids = Math.Min(4, inputs.Count / 2);
                int n = InferenceJobs.Grid(
                    model,
                    inputs.Take(ids).ToList(),
                    inputs.Skip(ids).Take(4).ToList(),
                    Path.Combine(swaps, "generated")
                );
                string interp = Path.Combine(swaps, "interpolation");
                InferenceJobs.Interpolate(
                    model,
                    [
                        inputs[0] with
                        {
                            Stem = "id",
                        },
                        inputs[1] with
                        {
                            Stem = "attr_a",
                        },
                        inputs[2] with
                        {
                            Stem = "attr_b",
                        },
                    ],
                    interp,
                    steps: 7
                );
                string text = $"{n} identity swaps of held-out generated faces; an attribute interpolation";
                if (o.Photos is not null)
                {
                    // Real photos are FFHQ-aligned first, as 'iddis infer' does.
                    using var faces = new FaceInputs(
                        model.Generator.Resolution,
                        model.Device,
                        InputAlignment.Align,
                        modelsDir: o.ModelsDir
                    );
                    var photos = faces.Align(InferenceJobs.ReadFolder(o.Photos, log).Take(4).ToList(), log);
                    if (photos.Count == 0)
                        throw new SettingException(Setting.Photos, o.Photos, "no face found in any photo");
                    int m = InferenceJobs.Grid(model, photos, photos, Path.Combine(swaps, "photos"));
                    text += $"; {m} swaps among {photos.Count} aligned photos";
                }
                return text;
            }
        );

        string report = "";
        Stage(
            "report",
            new DemoWork.Report(o.OutDir),
            () =>
            {
                report = DemoReport.Write(
                    o.OutDir,
                    config,
                    _stages,
                    UntrainedGenerator,
                    Path.Combine(swaps, "generated", "grid.png"),
                    Path.Combine(swaps, "interpolation", "strip.png"),
                    o.Photos is null ? null : Path.Combine(swaps, "photos", "grid.png"),
                    realFaces
                );
                Sections = DemoReport.Sections(UntrainedGenerator, realFaces is not null, o.Photos is not null);
                return report;
            }
        );
        return report;

        void Stage(string name, DemoWork what, Func<string> work)
        {
            cancellation.ThrowIfCancellationRequested();
            log($"== {name}");
            var sw = Stopwatch.StartNew();
            string summary = work();
            _stages.Add(new DemoStage(name, summary, sw.Elapsed.TotalSeconds, o.DescribeCommand(what)));
            log($"   {summary} ({sw.Elapsed.TotalSeconds:F1} s)");
        }
    }
}

/// <summary>The demo's report: a self-contained index.html (images embedded) and report.md with the same
/// numbers.</summary>
internal static class DemoReport
{
    public static string Write(
        string outDir,
        TrainingConfig config,
        IReadOnlyList<DemoStage> stages,
        bool untrained,
        string gridPng,
        string stripPng,
        string? photosPng,
        RealFacesResult? realFaces = null
    )
    {
        string metrics = new RunFolder(config.RunDir).MetricsFile;
        var losses = Plots.ReadSeries(metrics, "step", k => k.StartsWith("l_", StringComparison.Ordinal) || k == "r1");
        var validation = Plots.ReadSeries(metrics, "validation", _ => true);
        validation.Remove("step");
        var plots = new List<(string Title, byte[] Png)>();
        foreach (var (name, pts) in losses.OrderBy(p => p.Key, StringComparer.Ordinal))
            plots.Add(($"{name} per step", Plots.Line(LossTitle(name), name, pts)));
        foreach (var (name, pts) in validation.OrderBy(p => p.Key, StringComparer.Ordinal))
            plots.Add(($"validation {name}", Plots.Line($"validation: {name}", name, pts)));

        var html = new StringBuilder();
        html.Append(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>IdDisentangle demo</title><style>"
            )
            .Append("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}")
            .Append(".warn{background:#fff3cd;border:2px solid #e0a800;padding:1em;border-radius:6px}")
            .Append("table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}")
            .Append(
                "code{background:#f4f4f4;padding:2px 4px;word-break:break-all}.plots img{margin:4px}img{max-width:100%}"
            )
            .Append("</style></head><body><h1>IdDisentangle demo</h1>");
        if (untrained)
            html.Append(
                $"<p class=\"warn\" id=\"untrained\"><strong>Untrained generator.</strong> {Escape(Demo.UntrainedDisclaimer)}</p>"
            );
        html.Append(
            "<p>Face identity disentanglement via latent space mapping (Nitzan et al. 2020): an identity encoder reads image A, an attribute encoder image B, and a mapper places the pair in the generator's W space.</p>"
        );
        html.Append(
            "<h2>Stages</h2><table><tr><th>stage</th><th>result</th><th>seconds</th><th>command to run it by hand</th></tr>"
        );
        foreach (var s in stages)
            html.Append(
                $"<tr><td>{Escape(s.Name)}</td><td>{Escape(s.Summary)}</td><td>{s.Seconds:F1}</td><td><code>{Escape(s.Command)}</code></td></tr>"
            );
        html.Append("</table>");
        // Real faces open the page when the generator is untrained: the part of the method that works regardless.
        if (realFaces is not null && untrained)
            AppendRealFaces(html, realFaces);
        html.Append(
            "<h2 id=\"swaps\">Identity swaps (held-out generated images)</h2><p>Top row: attribute images; first column: identity images; cells: results.</p>"
        );
        html.Append(Img(gridPng, "identity swap grid"));
        html.Append("<h2>Attribute interpolation</h2>").Append(Img(stripPng, "interpolation strip"));
        if (photosPng is not null)
            html.Append("<h2 id=\"photos\">Photos</h2>").Append(Img(photosPng, "photo swap grid"));
        if (realFaces is not null && !untrained)
            AppendRealFaces(html, realFaces);
        html.Append("<h2 id=\"curves\">Training curves</h2><div class=\"plots\">");
        foreach (var (title, png) in plots)
            html.Append($"<img alt=\"{Escape(title)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\">");
        html.Append("</div>");
        var last = validation.ToDictionary(p => p.Key, p => p.Value.LastOrDefault().Value);
        if (last.Count > 0)
        {
            html.Append("<h2>Last validation</h2><table>");
            foreach (var (k, v) in last.OrderBy(p => p.Key, StringComparer.Ordinal))
                html.Append($"<tr><td>{Escape(k)}</td><td>{v:G5}</td></tr>");
            html.Append("</table>");
        }
        html.Append(
            $"<p>Run folder: <code>{Escape(config.RunDir)}</code> (metrics.jsonl, TensorBoard events, checkpoints).</p></body></html>"
        );
        string index = Demo.HtmlReportPath(outDir);
        IO.AtomicFile.WriteAllText(index, html.ToString());

        var md = new StringBuilder("# IdDisentangle demo\n\n");
        if (untrained)
            md.Append("> **Untrained generator.** ").Append(Demo.UntrainedDisclaimer).Append("\n\n");
        md.Append("| stage | result | seconds | command |\n|---|---|---|---|\n");
        foreach (var s in stages)
            md.Append($"| {s.Name} | {s.Summary.Replace("|", "\\|")} | {s.Seconds:F1} | `{s.Command}` |\n");
        if (last.Count > 0)
        {
            md.Append("\n## Last validation\n\n| metric | value |\n|---|---|\n");
            foreach (var (k, v) in last.OrderBy(p => p.Key, StringComparer.Ordinal))
                md.Append($"| {k} | {v:G5} |\n");
        }
        if (realFaces is not null)
        {
            var m = realFaces.Matrix;
            md.Append("\n## Real faces\n\n")
                .Append(
                    $"{realFaces.Annotated.Sum(a => a.Faces)} faces detected in {realFaces.Annotated.Count} photos, "
                )
                .Append($"{realFaces.AlignedFaces} FFHQ-aligned. Identity matrix: {m.Labels.Count} photos of ")
                .Append(
                    $"{m.People.Distinct().Count()} people, {m.Accuracy * 100:F1}% of {m.Pairs().Count()} pairs right at "
                )
                .Append(
                    $"{m.Threshold} (same person up to {m.SameMax:F3}, different people from {m.DifferentMin:F3}).\n"
                );
            if (realFaces.PasteBack is { } trip)
                md.Append($"Paste-back round trip on {trip.Name}: {trip.PsnrInside:F1} dB inside the face masks, ")
                    .Append(trip.OutsideIdentical ? "identical outside.\n" : "pixels outside changed.\n");
        }
        md.Append("\n## Last losses\n\n| term | last | mean of last 10 |\n|---|---|---|\n");
        foreach (var (k, pts) in losses.OrderBy(p => p.Key, StringComparer.Ordinal))
            md.Append($"| {k} | {pts[^1].Value:G5} | {pts.TakeLast(10).Average(p => p.Value):G5} |\n");
        md.Append($"\nPictures and curves: `{index}`.\n");
        IO.AtomicFile.WriteAllText(Demo.MarkdownReportPath(outDir), md.ToString());
        return index;
    }

    /// <summary>The sections of the report, in the order <see cref="Write"/> puts them.</summary>
    public static IReadOnlyList<(string Title, string Anchor, string Summary)> Sections(
        bool untrained,
        bool realFaces,
        bool photos
    )
    {
        var real = (
            "real faces",
            "real-faces",
            "detection, 68 landmarks, FFHQ alignment and an identity matrix on real photos"
        );
        var list = new List<(string, string, string)>();
        if (realFaces && untrained)
            list.Add(real);
        list.Add(
            (
                "identity swaps",
                "swaps",
                untrained ? "generated by the UNTRAINED generator: textures, not faces" : "held-out generated faces"
            )
        );
        if (photos)
            list.Add(("photo swaps", "photos", "identity swaps among your aligned photos"));
        if (realFaces && !untrained)
            list.Add(real);
        list.Add(("training curves", "curves", "losses and validation metrics per step"));
        return list;
    }

    static void AppendRealFaces(StringBuilder html, RealFacesResult r)
    {
        var m = r.Matrix;
        html.Append("<h2 id=\"real-faces\">Real faces (no generator needed)</h2>")
            .Append(
                "<p>Detection (face-api.js's SSD), 68 landmarks and FFHQ alignment, as <code>iddis align</code> does it:</p>"
            );
        foreach (var (name, png, faces) in r.Annotated)
            html.Append(
                    $"<figure><img alt=\"{Escape(name)}: detected faces and landmarks\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\">"
                )
                .Append($"<figcaption>{Escape(name)}: {faces} face(s)</figcaption></figure>");
        if (r.AlignedGrid is not null)
            html.Append(
                $"<p>The {r.AlignedFaces} faces, FFHQ-aligned:</p><img alt=\"aligned faces\" src=\"data:image/png;base64,{Convert.ToBase64String(r.AlignedGrid)}\">"
            );
        if (r.PasteBack is { } trip)
            html.Append(
                    $"<p>Paste-back round trip on {Escape(trip.Name)}: each aligned crop, unmodified, warped back through "
                )
                .Append("the inverse alignment and blended with its soft face mask (shown on the right, the photo ")
                .Append($"darkened outside the masks): {trip.PsnrInside:F1} dB inside the masks, outside ")
                .Append(trip.OutsideIdentical ? "every pixel identical.</p>" : "SOME PIXELS CHANGED.</p>")
                .Append(
                    $"<img alt=\"paste-back round trip\" style=\"max-width:49%\" src=\"data:image/png;base64,{Convert.ToBase64String(trip.ResultPng)}\">"
                )
                .Append(
                    $" <img alt=\"paste-back masks\" style=\"max-width:49%\" src=\"data:image/png;base64,{Convert.ToBase64String(trip.MaskPng)}\">"
                );
        html.Append(
                $"<p>Identity: face-api.js descriptor distances between {m.Labels.Count} photos of {m.People.Distinct().Count()} people; "
            )
            .Append(
                $"pairs closer than {m.Threshold} are called the same person. {m.Accuracy * 100:F1}% of {m.Pairs().Count()} pairs are decided right "
            )
            .Append($"(same person up to {m.SameMax:F3}, different people from {m.DifferentMin:F3}).</p>")
            .Append(
                $"<img alt=\"identity matrix\" src=\"data:image/png;base64,{Convert.ToBase64String(r.MatrixPng)}\">"
            );
    }

    static string LossTitle(string key) =>
        key switch
        {
            "l_id" => "L_id (identity)",
            "l_lnd" => "L_lnd (landmarks)",
            "l_rec" => "L_rec (reconstruction, same steps)",
            "l_adv_m" => "mapper adversarial loss",
            "l_d" => "D_W logistic loss",
            "r1" => "R1 penalty",
            "l_total" => "total non-adversarial loss",
            _ => key,
        };

    static string Img(string path, string alt) =>
        File.Exists(path)
            ? $"<img alt=\"{Escape(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\">"
            : $"<p>(missing {Escape(path)})</p>";

    static string Escape(string s) => System.Net.WebUtility.HtmlEncode(s);
}

/// <summary>Shows the demo's downloads on the bar of the stage that makes them.</summary>
sealed class StageFetchObserver(string stage, Action<string> log, Action<string, double, double>? progress)
    : IModelFetchObserver
{
    public T Fetch<T>(string description, Func<IProgress<DownloadProgress>?, T> fetch)
    {
        log($"fetching {description}");
        return fetch(
            progress is null
                ? null
                : new ImmediateProgress<DownloadProgress>(p =>
                    progress(stage, p.Received, p.Total ?? Math.Max(1, p.Received))
                )
        );
    }
}
