using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>The library's public surface: only the API types are public, and each agrees with the code behind
/// it.</summary>
public class PublicApiTests
{
    static ComputeOptions Cpu => new() { Device = "cpu", ModelsDir = TestModels.Store.Root };

    [Fact]
    public void OnlyTheApiIsPublic()
    {
        var exported = typeof(FaceSwapper)
            .Assembly.GetExportedTypes()
            .Select(t => t.FullName)
            .Order(StringComparer.Ordinal);
        Assert.Equal(
            [
                "IdDisentangle.ComputeOptions",
                "IdDisentangle.FaceEmbedder",
                "IdDisentangle.FaceGenerator",
                "IdDisentangle.FaceImage",
                "IdDisentangle.FaceInputMode",
                "IdDisentangle.FaceSwapper",
                "IdDisentangle.FaceSwapperOptions",
                "IdDisentangle.PhotoAligner",
            ],
            exported
        );
    }

    /// <summary>The generator renders rosinality's reference images of the W+ codes (the fixture's
    /// img_wplus.npy).</summary>
    [Fact]
    public void FaceGeneratorRendersTheReferenceImages()
    {
        using var generator = FaceGenerator.Load(TestPaths.Fixture("stylegan2", "generator.pt"), Cpu);
        using var w = IdDisentangle.IO.Npy.Read(TestPaths.Fixture("stylegan2", "wplus.npy"));
        using var reference = IdDisentangle.IO.Npy.Read(TestPaths.Fixture("stylegan2", "img_wplus.npy"));
        var faces = generator.Render(w);
        Assert.Equal(reference.shape[0], faces.Count);
        for (int i = 0; i < faces.Count; i++)
        {
            using var expected = reference[i].add(1).div(2).clamp(0, 1);
            Assert.True(TensorAssert.MaxAbsDiff(faces[i].Pixels, expected) < 1e-4f, $"image {i}");
        }
        var a = generator.Sample(2, seed: 3, truncation: 0.7);
        var b = generator.Sample(2, seed: 3, truncation: 0.7);
        Assert.Equal(0f, TensorAssert.MaxAbsDiff(a[1].Pixels, b[1].Pixels));
        Assert.Throws<FileNotFoundException>(() => FaceGenerator.Load("no-such-generator.pt"));
    }

    [SkippableFact]
    public void PhotoAlignerGivesTheAlignersFaces()
    {
        TestModels.RequireFaceApi();
        string photo = Path.Combine(TestPaths.Data("photos-unaligned"), "DST_01.jpg");
        using var aligner = PhotoAligner.Load(128, dlibLandmarks: false, Cpu);
        var faces = aligner.Align(FaceImage.Load(photo));
        using var inner = FaceAligner.Load(TestModels.Store, CPU, 128, landmarks: AlignmentLandmarks.FaceApi);
        var expected = inner.Align(new InputImage(photo, "DST_01", ImageIO.Read(photo)), _ => { });
        Assert.Equal(expected.Count, faces.Count);
        Assert.Single(faces);
        Assert.Equal(128, faces[0].Width);
        Assert.Equal(0f, TensorAssert.MaxAbsDiff(faces[0].Pixels, expected[0].Image));
    }

    [SkippableFact]
    public void FaceEmbedderTellsPeopleApart()
    {
        TestModels.RequireFaceApi();
        string Person(string name, int k) => Path.Combine(TestPaths.Data("identities"), name, $"{name}{k}.png");
        using var embedder = FaceEmbedder.Load("faceapi", detectFaces: false, compute: Cpu);
        var amy1 = embedder.Embed(FaceImage.Load(Person("amy", 1)));
        var amy2 = embedder.Embed(FaceImage.Load(Person("amy", 2)));
        var penny = embedder.Embed(FaceImage.Load(Person("penny", 1)));
        Assert.Equal(FaceRecognitionNet.DescriptorSize, amy1.Length);
        // The same descriptor face-api's net gives for the crop fitted into its square.
        using var net = PretrainedNetworks.FaceRecognition(TestModels.Store);
        using (no_grad())
        {
            var input = SquareFit.Apply(
                ImageIO.Read(Person("amy", 1)).unsqueeze(0),
                FaceRecognitionNet.InputSize,
                out _
            );
            Assert.True(TensorAssert.MaxAbsDiff(net.forward(input * 255)[0], tensor(amy1)) < 1e-5f);
        }
        Assert.True(FaceEmbedder.Distance(amy1, amy2) < FaceEmbedder.Distance(amy1, penny));
        Assert.True(embedder.SamePerson(FaceEmbedder.Distance(amy1, amy2)));
        Assert.False(embedder.SamePerson(FaceEmbedder.Distance(amy1, penny)));
        Assert.Throws<IdDisentangle.Networks.NetworkChoiceException>(() => FaceEmbedder.Load("facenet", compute: Cpu));
        Assert.Throws<IdDisentangle.Networks.NetworkChoiceException>(() => FaceEmbedder.Load("irse50", compute: Cpu));
    }
}
