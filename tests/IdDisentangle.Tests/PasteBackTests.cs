using IdDisentangle.Faces;
using IdDisentangle.Imaging;

namespace IdDisentangle.Tests;

/// <summary>Pasting an aligned face back into its photo: the round trip reproduces the photo.</summary>
public class PasteBackTests
{
    /// <summary>
    /// A photo aligned and its unmodified aligned crop pasted back: within the mask the photo comes back (PSNR at
    /// least 35 dB), outside it every pixel is the photo's own.
    /// </summary>
    [SkippableTheory]
    [InlineData("DST_01.jpg")]
    [InlineData("multi_people.jpg")]
    public void TheUnmodifiedCropPastedBackReproducesThePhoto(string name)
    {
        TestModels.RequireFaceApi();
        using var scope = NewDisposeScope();
        string file = Path.Combine(TestPaths.Data("photos-unaligned"), name);
        var photo = ImageIO.Read(file);
        using var aligner = FaceAligner.Load(TestModels.Store, CPU, 256, allFaces: true, AlignmentLandmarks.FaceApi);
        var faces = aligner.AlignFaces(new InputImage(file, name, photo), _ => { });
        Assert.NotEmpty(faces);
        var result = photo;
        var covered = zeros(1, photo.shape[1], photo.shape[2]);
        foreach (var face in faces)
        {
            var mask = PasteBack.FaceMask(face.Detection.Landmarks, face.Quad, 256);
            Assert.True(
                mask.max().ToDouble() > 0.99 && mask.min().ToDouble() == 0,
                "a mask with a solid face and an empty border"
            );
            result = PasteBack.Paste(result, face.Face.Image, face.Quad, mask);
            // The warped mask itself: white pasted onto black.
            var alpha = PasteBack.Paste(zeros(3, photo.shape[1], photo.shape[2]), ones(3, 256, 256), face.Quad, mask)[
                0..1
            ];
            covered = maximum(covered, alpha);
        }
        Assert.Equal(photo.shape, result.shape);
        var outside = covered.eq(0).expand_as(photo);
        Assert.True(
            result.masked_select(outside).eq(photo.masked_select(outside)).all().item<bool>(),
            "pixels outside the masks changed"
        );
        var inside = (covered > 0.5).expand_as(photo);
        double mse = (result - photo).square().masked_select(inside).mean().ToDouble();
        double psnr = 10 * Math.Log10(1 / mse);
        Assert.True(psnr >= 35, $"PSNR inside the masks {psnr:F1} dB");
        Assert.True(inside.sum().ToDouble() > 3 * 40 * 40 * faces.Count, "the masks cover the faces");
    }

    /// <summary>
    /// Colour matching under a mask: a face given a colour cast comes back to the reference's mean colour under the
    /// mask (and with the spread matched, to its standard deviation), and closer to the reference than the cast.
    /// </summary>
    [Fact]
    public void ColourMatchingUndoesACast()
    {
        using var scope = NewDisposeScope();
        var reference = ImageIO.Read(Path.Combine(TestPaths.Data("ffhq-real-256"), "00004.png"));
        var mask = zeros(1, 256, 256);
        mask[.., 60..200, 70..190] = ones(1, 140, 120);
        var cast = (reference * 0.85 + tensor(new[] { 0.08f, 0f, -0.04f }).view(3, 1, 1)).clamp(0, 1);
        var inside = (mask > 0.5).expand(3, -1, -1);
        Tensor MeanUnder(Tensor x) => x.masked_select(inside).view(3, -1).mean([1]);
        Tensor StdUnder(Tensor x) => x.masked_select(inside).view(3, -1).std(1, unbiased: false);
        double Psnr(Tensor x) => 10 * Math.Log10(1 / (x - reference).square().masked_select(inside).mean().ToDouble());

        var shifted = PasteBack.MatchColours(cast, reference, mask, matchSpread: false);
        Assert.True((MeanUnder(shifted) - MeanUnder(reference)).abs().max().ToDouble() < 2e-3);
        Assert.True(Psnr(shifted) > Psnr(cast) + 3, $"{Psnr(shifted):F1} dB vs {Psnr(cast):F1} dB");
        var matched = PasteBack.MatchColours(cast, reference, mask);
        Assert.True((StdUnder(matched) - StdUnder(reference)).abs().max().ToDouble() < 2e-3);
        Assert.True(Psnr(matched) > 35, $"{Psnr(matched):F1} dB");
    }
}
