using IdDisentangle.Imaging;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Models.FaceApi;
using IdDisentangle.Models.Identity;

namespace IdDisentangle.Tests;

public class PreprocessTests
{
    [Fact]
    public void FfhqArcFaceCropIsPspsPixelBoxAt256AndScales()
    {
        Assert.Equal((32, 35, 220, 223), FaceCrop.FfhqArcFace.Box(256, 256));
        Assert.Equal((128, 140, 880, 892), FaceCrop.FfhqArcFace.Box(1024, 1024));
        using var img = arange(256 * 256, dtype: ScalarType.Float32).view(1, 1, 256, 256);
        using var c = FaceCrop.FfhqArcFace.Apply(img);
        Assert.Equal(new long[] { 1, 1, 188, 188 }, c.shape);
        Assert.Equal(35 * 256 + 32, c[0, 0, 0, 0].item<float>());
        Assert.Throws<ArgumentException>(() => FaceCrop.Parse("eyes"));
        Assert.Equal((42, 70, 210, 238), FaceCrop.FfhqFaceApi.Box(256, 256));
        Assert.Equal(FaceCrop.FfhqFaceApi, FaceCrop.Parse("ffhq"));
        Assert.Equal(FaceCrop.FfhqArcFace, FaceCrop.Parse("ffhq", arcFace: true));
    }

    [Fact]
    public void NoResamplingAtTheNetworksInputSize()
    {
        using var scope = NewDisposeScope();
        var face150 = rand(2, 3, 150, 150);
        Assert.True(FaceRecognitionNet.Prepare(face150, FaceCrop.None).SameAs(face150 * 255f));
        var face112 = rand(2, 3, 112, 112);
        Assert.True(FaceLandmark68Net.Prepare(face112, FaceCrop.None).SameAs(face112 * 255f));
        Assert.True(IrSe50.Prepare(face112, FaceCrop.None).SameAs(face112 * 2f - 1f));
        var x299 = rand(1, 3, 299, 299);
        Assert.True(InceptionV3.Prepare(x299).SameAs(x299 * 2f - 1f));
    }

    [Fact]
    public void PreprocessingIsDifferentiable()
    {
        using var scope = NewDisposeScope();
        var x = rand(2, 3, 256, 256).requires_grad_();
        var total =
            FaceRecognitionNet.Prepare(x, FaceCrop.FfhqArcFace).sum()
            + FaceLandmark68Net.Prepare(x, FaceCrop.None).mean()
            + IrSe50.Prepare(x, FaceCrop.FfhqArcFace).sum()
            + InceptionV3.Prepare(x).sum()
            + ResNet50.Prepare(x).sum();
        total.backward();
        Assert.True(x.grad!.abs().sum().item<float>() > 0);
        // The crop's outside gets gradient only from the uncropped networks: the corners are covered by those.
        Assert.True(x.grad![0, 0, 0, 0].item<float>() != 0);
    }

    [Fact]
    public void ResNetKerasPreprocessIsBgrMinusMean()
    {
        using var x = tensor(new float[] { 1f, 0.5f, 0f }).view(1, 3, 1, 1);
        using var y = ResNet50.KerasPreprocess(x);
        Assert.Equal(new[] { 0f - 103.939f, 127.5f - 116.779f, 255f - 123.68f }, y.flatten().data<float>().ToArray());
    }
}
