using IdDisentangle.Data;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Runs;
using IdDisentangle.Training;

namespace IdDisentangle.Tests;

/// <summary>Inference on a run trained for two steps on the shared 64-px fixture generator.</summary>
[Collection("console")]
public class InferenceTests
{
    internal static readonly Lazy<(string Run, string Data)> Trained = new(() =>
    {
        string root = TestPaths.NewTempDir();
        string data = Path.Combine(root, "dataset");
        using (var g = Weights.StyleGan2Weights.Load(TestPaths.Fixture("stylegan2", "generator.pt"), out _))
            DatasetGenerator.Generate(
                g,
                new DatasetGenerationOptions
                {
                    OutDir = data,
                    NumImages = 12,
                    Seed = 4,
                }
            );
        var c = new TrainingConfig
        {
            Name = "tiny",
            DatasetDir = data,
            GeneratorPath = TestPaths.Fixture("stylegan2", "generator.pt"),
            ResultsDir = Path.Combine(root, "results"),
            BatchSize = 2,
            NumSteps = 2,
            TrainDataSize = 8,
            TestSize = 2,
            PixelLoss = PixelLoss.L1,
            AttrInputSize = 80,
            FaceCrop = "none",
        };
        using (var t = new Trainer(c))
            t.Run(resume: false);
        return (c.RunDir, data);
    });

    /// <summary>
    /// swap on ordinary photos: the result is the attribute photo at its size with only the face region changed
    /// (the saved mask says where), or with --crop-only the generator's aligned square.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task SwapPastesTheFaceBackIntoThePhoto()
    {
        Require();
        string photos = TestPaths.Data("photos-unaligned");
        string dir = TestPaths.NewTempDir();
        string outFile = Path.Combine(dir, "swap.png");
        string[] common = PhotoSwapArguments();
        var (code, text) = await CliCapture.RunAsync([.. common, "--out", outFile, "--save-crops"]);
        Assert.True(code == 0, text);
        Assert.Contains("pasted back", text);
        using var scope = NewDisposeScope();
        var photo = ImageIO.Read(Path.Combine(photos, "DST_02.jpg"));
        var result = ImageIO.Read(outFile);
        Assert.Equal(photo.shape, result.shape);
        Assert.Equal(new long[] { 3, 64, 64 }, ImageIO.Read(Path.Combine(dir, "swap_crop.png")).shape);
        Assert.True(File.Exists(Path.Combine(dir, "swap_mask.png")));
        var changed = (result - photo).abs().gt(1.5 / 255).any(0);
        double share = changed.to(ScalarType.Float32).mean().ToDouble();
        Assert.True(share > 0.002 && share < 0.3, $"{share:P2} of the photo changed");
        Assert.Equal(5 * 256 + 6 * 4, ImageIO.Read(Path.Combine(dir, "swap_steps.png")).shape[2]);

        // --color-match moves the face's colours: the result differs inside the face, nowhere outside the mask.
        string matched = Path.Combine(dir, "matched.png");
        (code, text) = await CliCapture.RunAsync([.. common, "--out", matched, "--color-match"]);
        Assert.True(code == 0, text);
        var recoloured = ImageIO.Read(matched);
        Assert.True((recoloured - result).abs().max().ToDouble() > 4.0 / 255, "colour matching changed nothing");
        var outside = MaskCover(Path.Combine(photos, "DST_02.jpg"), photo, allFaces: false).Covered.eq(0);
        Assert.Equal(0, ((recoloured - photo).abs().gt(0.5 / 255).any(0, keepdim: true) & outside).sum().ToInt64());

        // A photo whose EXIF says "rotate 90 degrees": the result is the upright photo, at its upright size.
        string rotated = Path.Combine(dir, "rotated.jpg");
        File.WriteAllBytes(
            rotated,
            ImageTests.WithExifOrientation(ImageIO.Encode(photo.transpose(1, 2).flip(2), ImageFormat.Jpeg, 97), 6)
        );
        var upright = ImageIO.Read(rotated);
        Assert.Equal(photo.shape, upright.shape);
        string rotatedOut = Path.Combine(dir, "rotated_swap.png");
        (code, text) = await CliCapture.RunAsync([
            .. common.Select(a => a.EndsWith("DST_02.jpg", StringComparison.Ordinal) ? rotated : a),
            "--out",
            rotatedOut,
        ]);
        Assert.True(code == 0, text);
        var rotatedResult = ImageIO.Read(rotatedOut);
        Assert.Equal(upright.shape, rotatedResult.shape);
        double rotatedShare = (rotatedResult - upright)
            .abs()
            .gt(1.5 / 255)
            .any(0)
            .to(ScalarType.Float32)
            .mean()
            .ToDouble();
        Assert.True(rotatedShare > 0.002 && rotatedShare < 0.3, $"{rotatedShare:P2} of the upright photo changed");

        (code, text) = await CliCapture.RunAsync([.. common, "--out", Path.Combine(dir, "crop.png"), "--crop-only"]);
        Assert.True(code == 0, text);
        Assert.Equal(new long[] { 3, 64, 64 }, ImageIO.Read(Path.Combine(dir, "crop.png")).shape);

        // --all-faces on a group photo: every face replaced, nothing outside the faces' masks touched.
        string group = Path.Combine(photos, "multi_people.jpg");
        string all = Path.Combine(dir, "all.png");
        (code, text) = await CliCapture.RunAsync([
            .. common.Select(a => a.EndsWith("DST_02.jpg", StringComparison.Ordinal) ? group : a),
            "--all-faces",
            "--out",
            all,
        ]);
        Assert.True(code == 0, text);
        var groupPhoto = ImageIO.Read(group);
        var (covered, faces) = MaskCover(group, groupPhoto, allFaces: true, text);
        var moved = (ImageIO.Read(all) - groupPhoto).abs().gt(0.5 / 255).any(0, keepdim: true);
        Assert.Equal(0, (moved & covered.eq(0)).sum().ToInt64());
        foreach (var face in faces)
        {
            var c = face.Detection.Box;
            var inBox = moved[0, (int)(c.Y + c.Height / 2), (int)c.X..(int)c.Right];
            Assert.True(inBox.any().item<bool>(), "a face was left as it was");
        }
    }

    /// <summary>The public FaceSwapper gives what the model gives, and its interpolation ends at the two
    /// swaps.</summary>
    [SkippableFact]
    public void FaceSwapperSwapsLikeTheModel()
    {
        Require();
        var layout = new DatasetLayout(Trained.Value.Data);
        var options = new FaceSwapperOptions
        {
            Checkpoint = "last",
            Inputs = FaceInputMode.AsIs,
            Compute = new ComputeOptions { Device = "cpu", ModelsDir = TestModels.Store.Root },
        };
        using var swapper = FaceSwapper.Load(Trained.Value.Run, options);
        Assert.Equal(64, swapper.Resolution);
        using var a = FaceImage.Load(layout.ImagePath(8));
        using var b = FaceImage.Load(layout.ImagePath(9));
        using var swapped = swapper.Swap(a, b);
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, "last", device: "cpu");
        using (torch.inference_mode())
        {
            using var expected = model.Swap(a.Pixels.unsqueeze(0), b.Pixels.unsqueeze(0))[0];
            Assert.True(TensorAssert.MaxAbsDiff(swapped.Pixels, expected) < 1e-6f);
        }
        var frames = swapper.Interpolate(a, b, b, a, steps: 3);
        Assert.Equal(3, frames.Count);
        Assert.True(TensorAssert.MaxAbsDiff(frames[0].Pixels, swapped.Pixels) < 1e-5f);
        using var back = swapper.Swap(b, a);
        Assert.True(TensorAssert.MaxAbsDiff(frames[2].Pixels, back.Pixels) < 1e-5f);
    }

    /// <summary>
    /// The faces `swap` finds in <paramref name="photo"/> and how far their paste-back masks reach into it ([1, H, W],
    /// 0 where no mask does); with <paramref name="swapOutput"/>, also that `swap` reported as many faces.
    /// </summary>
    static (Tensor Covered, IReadOnlyList<AlignedFace> Faces) MaskCover(
        string path,
        Tensor photo,
        bool allFaces,
        string? swapOutput = null
    )
    {
        using var aligner = FaceAligner.Load(TestModels.Store, CPU, 64, allFaces, AlignmentLandmarks.FaceApi);
        var faces = aligner.AlignFaces(new InputImage(path, Path.GetFileNameWithoutExtension(path), photo), _ => { });
        Assert.True(allFaces ? faces.Count >= 3 : faces.Count == 1, $"{faces.Count} faces in {path}");
        if (swapOutput is not null)
            Assert.Contains($"{faces.Count} face(s) of the attribute photo swapped", swapOutput);
        var covered = zeros(1, photo.shape[1], photo.shape[2]);
        foreach (var face in faces)
        {
            var mask = PasteBack.FaceMask(face.Detection.Landmarks, face.Quad, 64);
            covered = maximum(covered, PasteBack.Paste(zeros_like(photo), ones(3, 64, 64), face.Quad, mask)[0..1]);
        }
        return (covered, faces);
    }

    /// <summary>iddis swap with the trained model on two unaligned photos (face-api landmarks, CPU), without --out.
    /// </summary>
    internal static string[] PhotoSwapArguments()
    {
        string photos = TestPaths.Data("photos-unaligned");
        return
        [
            "swap",
            "--run",
            Trained.Value.Run,
            "--checkpoint",
            "last",
            "--id",
            Path.Combine(photos, "DST_01.jpg"),
            "--attr",
            Path.Combine(photos, "DST_02.jpg"),
            "--landmarks",
            "face-api",
            "--device",
            "cpu",
        ];
    }

    internal static void Require()
    {
        TestModels.RequireFaceApi();
        Skip.IfNot(
            File.Exists(TestModels.Store.PathOf("inceptionv3")),
            "InceptionV3 weights missing: run 'iddis models fetch'"
        );
    }

    static string Folder(params string[] images)
    {
        string dir = TestPaths.NewTempDir();
        var layout = new DatasetLayout(Trained.Value.Data);
        foreach (var spec in images)
        {
            var parts = spec.Split('=');
            File.Copy(layout.ImagePath(long.Parse(parts[1])), Path.Combine(dir, parts[0] + ".png"));
        }
        return dir;
    }

    [SkippableFact]
    public void GridWritesEveryCombinationAndTheTable()
    {
        Require();
        var ids = InferenceJobs.ReadFolder(Folder("anna=8", "bob=9", "cid=10"), _ => { });
        string attrDir = Folder("smile=11", "pose=7");
        File.WriteAllText(Path.Combine(attrDir, "notes.txt"), "not an image");
        File.WriteAllText(Path.Combine(attrDir, "broken.png"), "not a png");
        var log = new List<string>();
        var attrs = InferenceJobs.ReadFolder(attrDir, log.Add);
        Assert.Contains(log, l => l.Contains("skipped 1 non-image"));
        Assert.Contains(log, l => l.Contains("broken.png"));
        string outDir = Path.Combine(TestPaths.NewTempDir(), "out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "existing output stays");
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        Assert.Equal(6, InferenceJobs.Grid(model, ids, attrs, outDir, batchSize: 4));
        foreach (var a in new[] { "pose", "smile" })
        foreach (var i in new[] { "anna", "bob", "cid" })
            Assert.True(File.Exists(Path.Combine(outDir, $"attr_{a}", $"id_{i}.png")), $"attr_{a}/id_{i}.png");
        Assert.True(File.Exists(Path.Combine(outDir, "keep.txt")));
        using var grid = ImageIO.Read(Path.Combine(outDir, "grid.png"));
        // 4 rows (header + 3 identities) and 3 columns (header + 2 attributes) of 64-px cells, plus labels and padding.
        Assert.True(grid.shape[1] >= 4 * 66 && grid.shape[2] >= 3 * 66);
        // A cell equals the file of its combination.
        using var cell = ImageIO.Read(Path.Combine(outDir, "attr_pose", "id_bob.png"));
        using var swap = model.Swap(ids[1].Image.unsqueeze(0), attrs.First(a => a.Stem == "pose").Image.unsqueeze(0))[
            0
        ];
        Assert.True(TensorAssert.MaxAbsDiff(cell, swap) <= 1.01f / 255);
    }

    [SkippableFact]
    public void PairsMatchStemsAndListTheRest()
    {
        Require();
        var ids = InferenceJobs.ReadFolder(Folder("a=8", "b=9", "c=10"), _ => { });
        var attrs = InferenceJobs.ReadFolder(Folder("b=11", "a=7", "z=6"), _ => { });
        string outDir = TestPaths.NewTempDir();
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, "last", device: "cpu");
        var (written, unmatched) = InferenceJobs.Pairs(model, ids, attrs, outDir);
        Assert.Equal(2, written);
        Assert.True(File.Exists(Path.Combine(outDir, "a.png")) && File.Exists(Path.Combine(outDir, "b.png")));
        Assert.Equal(2, unmatched.Count);
        Assert.Contains(unmatched, u => u.StartsWith("identity") && u.EndsWith("c.png"));
        Assert.Contains(unmatched, u => u.StartsWith("attributes") && u.EndsWith("z.png"));
    }

    [SkippableFact]
    public void InterpolationEndFramesAreTheEndpointResults()
    {
        Require();
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        var attrCase = InferenceJobs.ReadFolder(Folder("id=8", "attr1=9", "attr2=10"), _ => { });
        var asGiven = new InterpolationOptions { LoopFake = false };
        var frames = InferenceJobs.Interpolate(
            model,
            attrCase,
            Path.Combine(TestPaths.NewTempDir(), "o"),
            steps: 5,
            asGiven
        );
        Assert.Equal(5, frames.shape[0]);
        var id = attrCase.First(x => x.Stem == "id").Image;
        // The end points swapped as one batch of two, as the interpolation maps them. The generator renders the
        // frames as a batch of five: oneDNN's sums depend on the batch size, so pixels agree to float32 rounding
        // amplified through G (measured 4e-5 of [0,1]), far below any semantic difference.
        using (
            var ends = model.Swap(
                stack([id, id]),
                stack([attrCase.First(x => x.Stem == "attr1").Image, attrCase.First(x => x.Stem == "attr2").Image])
            )
        )
        {
            Assert.True(
                TensorAssert.MaxAbsDiff(frames[0..1], ends[0..1]) < 2e-4f,
                $"first frame differs by {TensorAssert.MaxAbsDiff(frames[0..1], ends[0..1])}"
            );
            Assert.True(
                TensorAssert.MaxAbsDiff(frames[4..5], ends[1..2]) < 2e-4f,
                $"last frame differs by {TensorAssert.MaxAbsDiff(frames[4..5], ends[1..2])}"
            );
        }

        var idCase = InferenceJobs.ReadFolder(Folder("id_a=8", "id_b=9", "attr=10"), _ => { });
        string outDir = Path.Combine(TestPaths.NewTempDir(), "o2");
        var f2 = InferenceJobs.Interpolate(model, idCase, outDir, steps: 3, asGiven);
        var attr = idCase.First(x => x.Stem == "attr").Image;
        using (
            var ends = model.Swap(
                stack([idCase.First(x => x.Stem == "id_a").Image, idCase.First(x => x.Stem == "id_b").Image]),
                stack([attr, attr])
            )
        )
            Assert.True(
                TensorAssert.MaxAbsDiff(f2[2..3], ends[1..2]) < 2e-4f,
                $"last frame differs by {TensorAssert.MaxAbsDiff(f2[2..3], ends[1..2])}"
            );
        Assert.True(
            File.Exists(Path.Combine(outDir, "frame_02.png")) && File.Exists(Path.Combine(outDir, "strip.png"))
        );

        // The paper's default (loop_fake): generated inputs are first replaced by G(x, x), unclamped; real ones are
        // not.
        var looped = InferenceJobs.Interpolate(model, attrCase, Path.Combine(TestPaths.NewTempDir(), "o3"), steps: 5);
        var attrImgs = stack([
            attrCase.First(x => x.Stem == "attr1").Image,
            attrCase.First(x => x.Stem == "attr2").Image,
        ]);
        using (no_grad())
        {
            var ids2 = stack([id, id]);
            var expected = model.Render(
                model.MapToW(model.ReconstructForEncoding(ids2), model.ReconstructForEncoding(attrImgs))
            );
            Assert.True(
                TensorAssert.MaxAbsDiff(looped[0..1], expected[0..1]) < 2e-4f
                    && TensorAssert.MaxAbsDiff(looped[4..5], expected[1..2]) < 2e-4f
            );
            Assert.True(TensorAssert.MaxAbsDiff(looped[0..1], frames[0..1]) > 1e-3f, "loop_fake changed nothing");
            var realAttr = InferenceJobs.Interpolate(
                model,
                attrCase,
                Path.Combine(TestPaths.NewTempDir(), "o4"),
                steps: 5,
                new InterpolationOptions { RealAttr = true }
            );
            var expectedReal = model.Render(model.MapToW(model.ReconstructForEncoding(ids2), attrImgs));
            Assert.True(
                TensorAssert.MaxAbsDiff(realAttr[0..1], expectedReal[0..1]) < 2e-4f,
                "--real-attr inputs are encoded as given"
            );
        }

        // Linear in the codes (the paper's w_space=False): the same end frames, another path between them.
        var inCodes = InferenceJobs.Interpolate(
            model,
            attrCase,
            Path.Combine(TestPaths.NewTempDir(), "o5"),
            steps: 5,
            asGiven with
            {
                Space = InterpolationSpace.Codes,
            }
        );
        Assert.True(
            TensorAssert.MaxAbsDiff(inCodes[0..1], frames[0..1]) < 2e-4f
                && TensorAssert.MaxAbsDiff(inCodes[4..5], frames[4..5]) < 2e-4f
        );
        Assert.True(
            TensorAssert.MaxAbsDiff(inCodes[2..3], frames[2..3]) > 1e-4f,
            "interpolating the codes took the W path"
        );

        var bad = InferenceJobs.ReadFolder(Folder("id=8", "attr=9"), _ => { });
        Assert.Throws<InvalidDataException>(() => InferenceJobs.Interpolate(model, bad, TestPaths.NewTempDir()));
    }

    [SkippableFact]
    public void MissingFoldersRunsAndInputsAreClearErrors()
    {
        Require();
        Assert.Throws<DirectoryNotFoundException>(() =>
            InferenceJobs.ReadFolder(Path.Combine(TestPaths.NewTempDir(), "nope"), _ => { })
        );
        Assert.Throws<InvalidDataException>(() => InferenceJobs.ReadFolder(TestPaths.NewTempDir(), _ => { }));
        Assert.Throws<FileNotFoundException>(() => DisentanglementModel.FromRun(TestPaths.NewTempDir()));
        Assert.Throws<FileNotFoundException>(() => DisentanglementModel.FromRun(Trained.Value.Run, "best_nothing"));
        // An output that would replace an input is refused.
        string dir = Folder("x=8");
        var ids = InferenceJobs.ReadFolder(dir, _ => { });
        using var model = DisentanglementModel.FromRun(Trained.Value.Run, device: "cpu");
        var before = File.ReadAllBytes(Path.Combine(dir, "x.png"));
        Assert.Throws<IOException>(() => InferenceJobs.Pairs(model, ids, ids, dir));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "x.png")));
    }

    /// <summary>
    /// Real photos through the CLI: every face of the group photo aligned with --all-faces, a photo without a face
    /// reported by name and skipped while the rest goes on, declared-aligned inputs at the generator's resolution used
    /// as they are.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task PhotosAreAlignedAndFacelessOnesSkipped()
    {
        Require();
        TestModels.RequireAlignment();
        string photos = TestPaths.NewTempDir();
        File.Copy(TestPaths.Data("photos-unaligned", "multi_people.jpg"), Path.Combine(photos, "group.jpg"));
        File.Copy(TestPaths.Data("photos-unaligned", "DST_01.jpg"), Path.Combine(photos, "dst.jpg"));
        // A smooth colour ramp: an image, but no face.
        using (var ramp = linspace(0, 1, 96).view(1, 1, -1).expand(3, 80, -1).contiguous())
            ImageIO.Write(Path.Combine(photos, "wall.png"), ramp);
        string attrs = Folder("pose=7");
        string outDir = Path.Combine(TestPaths.NewTempDir(), "out");
        var (rc, text) = await CliCapture.RunAsync(
            "infer",
            "grid",
            "--run",
            Trained.Value.Run,
            "--id-dir",
            photos,
            "--attr-dir",
            attrs,
            "--aligned",
            "--all-faces",
            "--out",
            outDir,
            "--device",
            "cpu"
        );
        Assert.True(rc == 0, text);
        Assert.Contains("wall.png: no face found; skipped", text);
        var written = Directory
            .GetFiles(Path.Combine(outDir, "attr_pose"), "*.png")
            .Select(Path.GetFileName)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(["id_dst.png", "id_group_face1.png", "id_group_face2.png", "id_group_face3.png"], written);
        // The grid's first column holds the aligned faces at the generator's resolution.
        using var grid = ImageIO.Read(Path.Combine(outDir, "grid.png"));
        Assert.True(grid.shape[1] > 4 * 64 && grid.shape[2] > 2 * 64);

        // An unknown landmark model is refused by the option's name before anything runs.
        (rc, text) = await CliCapture.RunAsync(
            "infer",
            "grid",
            "--run",
            Trained.Value.Run,
            "--id-dir",
            photos,
            "--attr-dir",
            attrs,
            "--landmarks",
            "bogus",
            "--out",
            outDir + "2",
            "--device",
            "cpu"
        );
        Assert.NotEqual(0, rc);
        Assert.Contains("--landmarks bogus", text);
        Assert.False(Directory.Exists(outDir + "2"));
    }

    /// <summary>The aligner on the group photo: three faces, largest first, each FFHQ-aligned to the requested
    /// size.</summary>
    [SkippableFact]
    public void AlignerFindsEveryFaceOfAGroupPhoto()
    {
        TestModels.RequireAlignment();
        using var scope = NewDisposeScope();
        var photo = new InputImage(
            "group.jpg",
            "group",
            ImageIO.Read(TestPaths.Data("photos-unaligned", "multi_people.jpg"))
        );
        using var all = FaceAligner.Load(TestModels.Store, CPU, 128, allFaces: true);
        var faces = all.Align(photo, _ => { });
        Assert.Equal(["group_face1", "group_face2", "group_face3"], faces.Select(f => f.Stem).ToList());
        Assert.All(faces, f => Assert.Equal(new long[] { 3, 128, 128 }, f.Image.shape));
        using var largest = FaceAligner.Load(TestModels.Store, CPU, 128);
        var one = largest.Align(photo, _ => { });
        Assert.Single(one);
        Assert.Equal("group", one[0].Stem);
        Assert.True(TensorAssert.MaxAbsDiff(one[0].Image, faces[0].Image) < 1e-6f);
        // face-api.js's landmarks alone (--landmarks face-api) frame the same faces a little differently.
        using var faceApi = FaceAligner.Load(
            TestModels.Store,
            CPU,
            128,
            allFaces: true,
            landmarks: AlignmentLandmarks.FaceApi
        );
        var other = faceApi.Align(photo, _ => { });
        Assert.Equal(3, other.Count);
        for (int i = 0; i < 3; i++)
        {
            double diff = (other[i].Image - faces[i].Image).abs().mean().item<float>();
            Assert.True(
                diff > 1e-4 && diff < 0.15,
                $"face {i + 1}: mean difference {diff} between the two landmark models' alignments"
            );
        }
        // Declared aligned at the resolution: passed through untouched; at another size: aligned.
        var generated = new InputImage("g.png", "g", rand(3, 128, 128));
        var trusting = new FaceAligner(
            new Faces.FaceDetector(
                Weights.PretrainedNetworks.FaceDetector(TestModels.Store),
                Weights.PretrainedNetworks.Landmarks68(TestModels.Store),
                CPU
            ),
            128
        )
        {
            TrustAlignedAtResolution = true,
        };
        Assert.Same(generated, trusting.Align(generated, _ => { }).Single());
        var log = new List<string>();
        Assert.Empty(trusting.Align(new InputImage("noise.png", "noise", rand(3, 100, 100)), log.Add));
        Assert.Equal(["noise.png: no face found; skipped"], log);
    }
}
