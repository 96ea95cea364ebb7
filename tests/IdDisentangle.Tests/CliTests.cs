using IdDisentangle.Cli;

namespace IdDisentangle.Tests;

[Collection("console")]
public class CliTests
{
    /// <summary>--max-pixels refuses an image from its header, by name, in any command that reads images.</summary>
    [SkippableFact]
    public async Task MaxPixelsRefusesLargerImagesByName()
    {
        TestModels.RequireFaceApi();
        string photo = Path.Combine(TestPaths.Data("photos-unaligned"), "DST_01.jpg");
        string outFile = Path.Combine(TestPaths.NewTempDir(), "e.npy");
        var (code, text) = await CliCapture.RunAsync(
            "embed",
            "--net",
            "faceapi",
            photo,
            "--max-pixels",
            "1000",
            "--out",
            outFile
        );
        Assert.Equal(1, code);
        Assert.Contains($"{photo}: image is 441x610, more than the 1000 pixels allowed", text);
        (code, text) = await CliCapture.RunAsync(
            "embed",
            "--net",
            "faceapi",
            photo,
            "--max-pixels",
            "0",
            "--out",
            outFile
        );
        Assert.Contains("--max-pixels 0: must be positive", text);
        Assert.NotEqual(0, code);
    }

    [Fact]
    public async Task DoctorRunsAComputationAndSucceeds()
    {
        string store = TestPaths.NewTempDir();
        Assert.Equal(0, await CliApp.RunAsync(["doctor", "--device", "cpu", "--models-dir", store]));
    }

    /// <summary>--output-size: the data set's images at that size (the generator's area-downsampled); above its own, an error.</summary>
    [Fact]
    public async Task GenerateDataWritesImagesAtTheOutputSize()
    {
        string generator = TestPaths.Fixture("stylegan2", "generator.pt");
        string outDir = Path.Combine(TestPaths.NewTempDir(), "data");
        var (code, text) = await CliCapture.RunAsync(
            "generate-data",
            "--generator",
            generator,
            "--num-images",
            "2",
            "--output-size",
            "32",
            "--out",
            outDir,
            "--device",
            "cpu"
        );
        Assert.True(code == 0, text);
        using var image = IdDisentangle.Imaging.ImageIO.Read(new IdDisentangle.Data.DatasetLayout(outDir).ImagePath(1));
        Assert.Equal(new long[] { 3, 32, 32 }, image.shape);
        (code, text) = await CliCapture.RunAsync(
            "generate-data",
            "--generator",
            generator,
            "--num-images",
            "2",
            "--output-size",
            "128",
            "--out",
            outDir
        );
        Assert.Equal(1, code);
        Assert.Contains("--output-size 128: above the generator's resolution 64", text);
    }

    /// <summary>Bad values are named by their flag: the registry's choices, the library's settings, "--n".</summary>
    [Fact]
    public async Task BadOptionValuesAreNamedByTheirFlag()
    {
        string generator = TestPaths.Fixture("stylegan2", "generator.pt");
        string outDir = Path.Combine(TestPaths.NewTempDir(), "out");
        var (code, text) = await CliCapture.RunAsync("embed", "--net", "bogus", "a.png", "--out", "e.npy");
        Assert.Equal(2, code);
        Assert.Contains("--net bogus: expected faceapi, irse50 or vggface2", text);
        (code, text) = await CliCapture.RunAsync(
            "generate-data",
            "--generator",
            generator,
            "--num-images",
            "4",
            "--shard",
            "5/2",
            "--out",
            outDir
        );
        Assert.Equal(1, code);
        Assert.Contains("--shard 5/2: expected i/n", text);
        (code, text) = await CliCapture.RunAsync("sample", "--generator", generator, "--n", "2", "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("--n: one-letter options take one dash (-n)", text);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public async Task OfflineCommandsSayHowToFetchInsteadOfDownloading()
    {
        string store = TestPaths.NewTempDir();
        string amy = TestPaths.Data("identities", "amy");
        var (code, text) = await CliCapture.RunAsync(
            "embed",
            "--compare",
            Path.Combine(amy, "amy1.png"),
            Path.Combine(amy, "amy2.png"),
            "--models-dir",
            store,
            "--offline"
        );
        Assert.Equal(1, code);
        Assert.Contains("fetching is off (--offline", text);
        Assert.Contains("iddis models fetch", text);
        Assert.Empty(Directory.GetFileSystemEntries(store));
    }

    [SkippableFact]
    public async Task UnavailableCudaAndUnknownOptionsFailWithDistinctCodes()
    {
        Skip.If(cuda.is_available(), "this machine has CUDA");
        Assert.Equal(1, await CliApp.RunAsync(["doctor", "--device", "cuda"]));
        Assert.Equal(2, await CliApp.RunAsync(["doctor", "--no-such-option"]));
    }
}

[Collection("console")]
public class SampleCommandTests
{
    static string Fx(string f) => TestPaths.Fixture("stylegan2", f);

    [SkippableTheory]
    [InlineData("-z", "z.npy", "1", "img_z.npy")]
    [InlineData("-z", "z.npy", "0.7", "img_trunc.npy")]
    [InlineData("-w", "wplus.npy", "1", "img_wplus.npy")]
    public async Task SampleWritesImagesCodesGridAndTheRawTensor(
        string option,
        string input,
        string psi,
        string expected
    )
    {
        string outDir = Path.Combine(TestPaths.NewTempDir(), "samples");
        int rc = await IdDisentangle.Cli.CliApp.RunAsync([
            "sample",
            "--generator",
            Fx("generator.pt"),
            option,
            Fx(input),
            "--truncation",
            psi,
            "--batch-size",
            "3",
            "--out",
            outDir,
            "--save-tensor",
            "--device",
            "cpu",
        ]);
        Assert.Equal(0, rc);
        using var images = IdDisentangle.IO.Npy.Read(Path.Combine(outDir, "images.npy"));
        using var reference = IdDisentangle.IO.Npy.Read(Fx(expected));
        Assert.True(TensorAssert.MaxAbsDiff(images, reference) < 1e-4f);
        for (int i = 0; i < 4; i++)
            Assert.True(File.Exists(Path.Combine(outDir, $"{i:000000}.png")));
        Assert.True(File.Exists(Path.Combine(outDir, "grid.png")));
        using var w = IdDisentangle.IO.Npy.Read(Path.Combine(outDir, "w.npy"));
        Assert.Equal(4, w.shape[0]);
        // PNGs are the clamped, rounded [0,1] version of the raw output.
        using var png = IdDisentangle.Imaging.ImageIO.Read(Path.Combine(outDir, "000002.png"));
        using var expectedPng = reference[2].add(1).div(2).clamp(0, 1).mul(255).round().div(255);
        Assert.True(TensorAssert.MaxAbsDiff(png, expectedPng) <= 1.01f / 255);
    }

    [SkippableFact]
    public async Task SeededSamplesAreReproducibleAndBadCodesAreNamed()
    {
        string a = Path.Combine(TestPaths.NewTempDir(), "a"),
            b = Path.Combine(TestPaths.NewTempDir(), "b");
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "sample",
                "--generator",
                Fx("generator.pt"),
                "-n",
                "3",
                "--seed",
                "5",
                "--out",
                a,
            ])
        );
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "sample",
                "--generator",
                Fx("generator.pt"),
                "-n",
                "3",
                "--seed",
                "5",
                "--batch-size",
                "2",
                "--out",
                b,
            ])
        );
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "w.npy")), File.ReadAllBytes(Path.Combine(b, "w.npy")));
        // w codes of the wrong width: exit code 1 with a message (not a crash).
        Assert.Equal(
            1,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "sample",
                "--generator",
                Fx("generator.pt"),
                "-w",
                Fx("probe.npy"),
                "--out",
                a,
            ])
        );
        Assert.Equal(
            2,
            await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), "--out", a])
        );
    }
}

[Collection("console")]
public class FaceNetCommandTests
{
    [SkippableFact]
    public async Task EmbedWritesDescriptorsAndComparesAndSkipsBadFiles()
    {
        TestModels.RequireFaceApi();
        string amy = TestPaths.Data("identities", "amy");
        string dir = TestPaths.NewTempDir();
        string bad = Path.Combine(dir, "bad.png");
        File.WriteAllText(bad, "not an image");
        string outFile = Path.Combine(dir, "e.npy");
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "embed",
                Path.Combine(amy, "amy1.png"),
                bad,
                Path.Combine(amy, "amy2.png"),
                "--out",
                outFile,
            ])
        );
        using var e = IdDisentangle.IO.Npy.Read(outFile);
        Assert.Equal(new long[] { 2, 128 }, e.shape);
        Assert.True((e[0] - e[1]).norm().item<float>() < 0.6f);
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "embed",
                "--compare",
                Path.Combine(amy, "amy1.png"),
                Path.Combine(amy, "amy3.png"),
            ])
        );
        Assert.Equal(2, await IdDisentangle.Cli.CliApp.RunAsync(["embed", "--compare", Path.Combine(amy, "amy1.png")]));
    }

    [SkippableFact]
    public async Task LandmarksAreInImagePixelsAndDrawn()
    {
        TestModels.RequireFaceApi();
        string dir = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        var face =
            IdDisentangle
                .IO.Npy.Read(TestPaths.Fixture("faceapi", "landmark_input_112.npy"))[0]
                .permute(2, 0, 1)
                .to(ScalarType.Float32) / 255;
        var reference = IdDisentangle.IO.Npy.Read(TestPaths.Fixture("faceapi", "landmarks_68_in_112px.npy"))[0];

        // At the network's size nothing is resampled: the fixture's numbers exactly.
        string exact = Path.Combine(dir, "face112.png");
        IdDisentangle.Imaging.ImageIO.Write(exact, face);
        // Twice the size: the points come back in the big image's pixels.
        string big = Path.Combine(dir, "face224.png");
        IdDisentangle.Imaging.ImageIO.Write(
            big,
            IdDisentangle.Imaging.ImageOps.Resize(face, 224, 224, IdDisentangle.Imaging.ResizeFilter.Nearest)
        );
        string outFile = Path.Combine(dir, "l.npy");
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "landmarks",
                exact,
                big,
                "--out",
                outFile,
                "--draw",
                Path.Combine(dir, "drawn"),
            ])
        );
        var l = IdDisentangle.IO.Npy.Read(outFile);
        Assert.Equal(new long[] { 2, 68, 2 }, l.shape);
        Assert.True(TensorAssert.MaxAbsDiff(l[0], reference) < 1e-3f);
        float mean = (l[1] - reference * 2).abs().mean().item<float>();
        Assert.True(mean < 2f, $"mean error {mean} px at 224");
        Assert.True(File.Exists(Path.Combine(dir, "drawn", "face224_landmarks.png")));
    }

    /// <summary>--detect: ordinary photos go through face-api.js's detection pipeline; a photo without a face gives a
    /// NaN row, the rest goes on.</summary>
    [SkippableFact]
    public async Task LandmarksAndEmbeddingsOfOrdinaryPhotos()
    {
        TestModels.RequireAlignment();
        string dir = TestPaths.NewTempDir();
        string photo = TestPaths.Data("photos-unaligned", "DST_01.jpg");
        string wall = Path.Combine(dir, "wall.png");
        using (var ramp = linspace(0, 1, 96).view(1, 1, -1).expand(3, 80, -1).contiguous())
            IdDisentangle.Imaging.ImageIO.Write(wall, ramp);
        string lmFile = Path.Combine(dir, "l.npy"),
            eFile = Path.Combine(dir, "e.npy");
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync(["landmarks", photo, wall, "--detect", "--out", lmFile])
        );
        Assert.Equal(0, await IdDisentangle.Cli.CliApp.RunAsync(["embed", photo, wall, "--detect", "--out", eFile]));
        using var scope = NewDisposeScope();
        var l = IdDisentangle.IO.Npy.Read(lmFile);
        var e = IdDisentangle.IO.Npy.Read(eFile);
        Assert.True(l[0].isfinite().all().item<bool>() && l[1].isnan().all().item<bool>());
        Assert.True(e[0].isfinite().all().item<bool>() && e[1].isnan().all().item<bool>());
        // Same as the library's pipeline on that photo.
        using var detector = IdDisentangle.Faces.FaceDetector.Load(TestModels.Store, CPU);
        var face = detector.Detect(IdDisentangle.Imaging.ImageIO.Read(photo)).MaxBy(f => f.Box.Area)!;
        Assert.True(Math.Abs(l[0, 36, 0].item<float>() - face.Landmarks[36].X) < 1e-3);

        // --net dlib: dlib's points for the same face (and only with --detect).
        string dlibFile = Path.Combine(dir, "dlib.npy");
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "landmarks",
                photo,
                wall,
                "--detect",
                "--net",
                "dlib",
                "--out",
                dlibFile,
            ])
        );
        var d = IdDisentangle.IO.Npy.Read(dlibFile);
        var expected = IdDisentangle.Faces.FaceDetector.RefineWithDlib(
            Weights.PretrainedNetworks.DlibLandmarks68(TestModels.Store),
            IdDisentangle.Models.Dlib.IntensityImage.FromRgb(IdDisentangle.Imaging.ImageIO.Read(photo)),
            face.Landmarks
        );
        Assert.True(
            Math.Abs(d[0, 36, 0].item<float>() - expected[36].X) < 1e-3
                && Math.Abs(d[0, 48, 1].item<float>() - expected[48].Y) < 1e-3
        );
        Assert.True(d[1].isnan().all().item<bool>());
        Assert.NotEqual(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync(["landmarks", photo, "--net", "dlib", "--out", dlibFile])
        );
    }

    [Fact]
    public void SquareFitMapsNetworkPixelsBackToTheImage()
    {
        // 300 wide, 200 high -> padded to 300x300 (50 above and below) -> 150 px input: scale 0.5.
        var fit = new IdDisentangle.Imaging.SquareFit(300, 200, 150);
        Assert.Equal((0.0, -50.0), fit.ToImage(0, 0));
        Assert.Equal((300.0, 250.0), fit.ToImage(150, 150));
        Assert.Equal((100.0, 50.0), fit.ToImage(50, 50));
        using var img = zeros(1, 3, 200, 300);
        using var fitted = IdDisentangle.Imaging.SquareFit.Apply(img, 150, out var f2);
        Assert.Equal(new long[] { 1, 3, 150, 150 }, fitted.shape);
        Assert.Equal(fit, f2);
    }
}

[Collection("console")]
public class AlignCommandTests
{
    /// <summary>
    /// iddis align: every face of a group photo and the face of a portrait aligned once, with the record of what
    /// placed each; a faceless image and a corrupt file reported by name while the rest goes on; a second run
    /// resumes (nothing redone), --overwrite redoes; the output folder may not be the input folder.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task AlignsAFolderOnceAndResumes()
    {
        TestModels.RequireAlignment();
        string dir = TestPaths.NewTempDir();
        string photos = Path.Combine(dir, "photos"),
            outDir = Path.Combine(dir, "aligned");
        Directory.CreateDirectory(photos);
        File.Copy(TestPaths.Data("photos-unaligned", "multi_people.jpg"), Path.Combine(photos, "group.jpg"));
        File.Copy(TestPaths.Data("photos-unaligned", "specific2.png"), Path.Combine(photos, "portrait.png"));
        using (var ramp = linspace(0, 1, 96).view(1, 1, -1).expand(3, 80, -1).contiguous())
            IdDisentangle.Imaging.ImageIO.Write(Path.Combine(photos, "wall.png"), ramp);
        File.WriteAllText(Path.Combine(photos, "broken.jpg"), "not a jpeg");

        var (code, text) = await CliCapture.RunAsync(
            "align",
            "--input-dir",
            photos,
            "--out",
            outDir,
            "--size",
            "128",
            "--all-faces",
            "--device",
            "cpu"
        );
        Assert.True(code == 0, text);
        Assert.Contains("wall.png: no face found; skipped", text);
        Assert.Contains("broken.jpg", text);
        var written = Directory
            .GetFiles(outDir, "*.png")
            .Select(Path.GetFileName)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(["group_face1.png", "group_face2.png", "group_face3.png", "portrait.png"], written);

        // The faces are what the library's aligner gives, and the record says what placed them.
        using var scope = NewDisposeScope();
        using var aligner = IdDisentangle.Faces.FaceAligner.Load(TestModels.Store, CPU, 128);
        var portrait = IdDisentangle.Imaging.ImageIO.Read(Path.Combine(photos, "portrait.png"));
        var expected = aligner
            .AlignFaces(
                new IdDisentangle.Imaging.InputImage(Path.Combine(photos, "portrait.png"), "portrait", portrait),
                _ => { }
            )
            .Single();
        using var ours = IdDisentangle.Imaging.ImageIO.Read(Path.Combine(outDir, "portrait.png"));
        Assert.True(
            TensorAssert.MaxAbsDiff(ours, expected.Face.Image) <= 0.5f / 255 + 1e-6f,
            "the written face is the aligner's (8-bit rounding)"
        );
        var record = System
            .Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "alignment.json")))!
            .AsObject();
        Assert.Equal(4, record.Count);
        var entry = record["portrait.png"]!;
        Assert.Equal(Path.Combine(photos, "portrait.png"), entry["source"]!.GetValue<string>());
        Assert.Equal("dlib", entry["landmark_model"]!.GetValue<string>());
        Assert.Equal(68, entry["landmarks"]!.AsArray().Count);
        Assert.True(
            Math.Abs(entry["landmarks"]![36]![0]!.GetValue<double>() - expected.Detection.Landmarks[36].X) < 1e-2
        );
        Assert.True(Math.Abs(entry["quad"]![2]![1]!.GetValue<double>() - expected.Quad.LowerRight.Y) < 1e-2);
        Assert.Equal(3, record["group_face3.png"]!["face"]!.GetValue<int>());

        // A second run passes over what is done; --overwrite redoes it.
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(outDir, "portrait.png"));
        (code, text) = await CliCapture.RunAsync(
            "align",
            "--input-dir",
            photos,
            "--out",
            outDir,
            "--size",
            "128",
            "--all-faces",
            "--device",
            "cpu"
        );
        Assert.True(code == 0, text);
        Assert.Contains("2 already aligned", text);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "portrait.png")));
        Thread.Sleep(20);
        (code, text) = await CliCapture.RunAsync(
            "align",
            "--input-dir",
            photos,
            "--out",
            outDir,
            "--size",
            "128",
            "--all-faces",
            "--overwrite",
            "--device",
            "cpu"
        );
        Assert.True(code == 0, text);
        Assert.NotEqual(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "portrait.png")));

        (code, text) = await CliCapture.RunAsync("align", "--input-dir", photos, "--out", photos, "--device", "cpu");
        Assert.NotEqual(0, code);
        Assert.Contains("must not be the input folder", text);
        Assert.Equal(4, Directory.GetFiles(photos).Length);
    }
}

/// <summary>Runs iddis in-process with the console captured; tests that use it belong to the "console"
/// collection.</summary>
static class CliCapture
{
    /// <summary>The exit code and the console text, wide enough not to wrap paths, whitespace runs made single
    /// spaces.</summary>
    public static async Task<(int Code, string Text)> RunAsync(params string[] args)
    {
        var (code, raw) = await RunRawAsync(args);
        return (code, System.Text.RegularExpressions.Regex.Replace(raw, @"\s+", " "));
    }

    /// <summary>The exit code and the console text as printed (lines kept).</summary>
    public static async Task<(int Code, string Text)> RunRawAsync(params string[] args)
    {
        var console = new StringWriter();
        var previous = Spectre.Console.AnsiConsole.Console;
        var capture = Spectre.Console.AnsiConsole.Create(
            new Spectre.Console.AnsiConsoleSettings
            {
                Out = new Spectre.Console.AnsiConsoleOutput(console),
                Ansi = Spectre.Console.AnsiSupport.No,
                ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            }
        );
        capture.Profile.Width = 4000;
        Spectre.Console.AnsiConsole.Console = capture;
        try
        {
            return (await IdDisentangle.Cli.CliApp.RunAsync(args), console.ToString());
        }
        finally
        {
            Spectre.Console.AnsiConsole.Console = previous;
        }
    }
}
