using IdDisentangle.Imaging;
using SkiaSharp;

namespace IdDisentangle.Tests;

public class ImageTests
{
    /// <summary>
    /// ResizeFilter.PilBicubic equals Pillow's Image.resize default (BICUBIC) on a float image, shrinking and
    /// enlarging: the resize the paper's read_SG_image applies to data set images of another size.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void PilBicubicIsPillowsResize()
    {
        ExternalTools.RequirePython("python3-pil python3-numpy", "PIL", "numpy");
        using var scope = NewDisposeScope();
        manual_seed(4);
        var img = rand(1, 1, 48, 48);
        string dir = TestPaths.NewTempDir(),
            input = Path.Combine(dir, "in.npy");
        IdDisentangle.IO.Npy.Write(input, img[0, 0]);
        foreach (int size in new[] { 30, 77 })
        {
            string output = Path.Combine(dir, $"out{size}.npy");
            string script =
                "import numpy as np, sys; from PIL import Image; a = np.load(sys.argv[1]); "
                + "np.save(sys.argv[2], np.asarray(Image.fromarray(a, 'F').resize((int(sys.argv[3]),) * 2, Image.BICUBIC)))";
            var psi = new System.Diagnostics.ProcessStartInfo(
                ExternalTools.Python,
                ["-c", script, input, output, size.ToString()]
            )
            {
                RedirectStandardError = true,
            };
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                Assert.True(p.ExitCode == 0, err);
            }
            var ours = ImageOps.Resize(img, size, size, ResizeFilter.PilBicubic)[0, 0];
            float diff = TensorAssert.MaxAbsDiff(ours, IdDisentangle.IO.Npy.Read(output));
            Assert.True(diff < 1e-4f, $"{size} px: differs from Pillow by {diff}");
        }
    }

    static Tensor Gradient(int h, int w)
    {
        var y = arange(h, dtype: ScalarType.Float32).div(h - 1).view(1, h, 1).expand(1, h, w);
        var x = arange(w, dtype: ScalarType.Float32).div(w - 1).view(1, 1, w).expand(1, h, w);
        return cat([x, y, (x + y) / 2], 0).contiguous();
    }

    [Fact]
    public void PngRoundTripIsExactAt8Bits()
    {
        using var scope = NewDisposeScope();
        var img = Gradient(37, 53);
        string path = Path.Combine(TestPaths.NewTempDir(), "g.png");
        ImageIO.Write(path, img);
        var back = ImageIO.Read(path);
        Assert.Equal(new long[] { 3, 37, 53 }, back.shape);
        var expected = img.mul(255).round().div(255);
        Assert.True((back - expected).abs().max().item<float>() < 1e-6f);
    }

    [Fact]
    public void JpegRoundTripIsClose_AndEncodeClampsOutOfRangeValues()
    {
        using var scope = NewDisposeScope();
        var img = Gradient(64, 64);
        string dir = TestPaths.NewTempDir();
        ImageIO.Write(Path.Combine(dir, "g.jpg"), img, quality: 95);
        var back = ImageIO.Read(Path.Combine(dir, "g.jpg"));
        Assert.True((back - img).abs().mean().item<float>() < 0.01f);

        var wild = img * 3 - 1; // values in [-1, 2]
        ImageIO.Write(Path.Combine(dir, "w.png"), wild.unsqueeze(0));
        var clamped = ImageIO.Read(Path.Combine(dir, "w.png"));
        Assert.True((clamped - wild.clamp(0, 1).mul(255).round().div(255)).abs().max().item<float>() < 1e-6f);
    }

    [Fact]
    public void GreyscaleIsExpandedToRgb()
    {
        using var scope = NewDisposeScope();
        using var bmp = new SKBitmap(new SKImageInfo(8, 4, SKColorType.Gray8, SKAlphaType.Opaque));
        var px = bmp.GetPixelSpan();
        for (int i = 0; i < px.Length; i++)
            px[i] = (byte)(i * 7);
        string path = Path.Combine(TestPaths.NewTempDir(), "grey.png");
        using (var data = SKImage.FromBitmap(bmp).Encode(SKEncodedImageFormat.Png, 100))
            File.WriteAllBytes(path, data.ToArray());
        var t = ImageIO.Read(path);
        Assert.Equal(new long[] { 3, 4, 8 }, t.shape);
        Assert.True(t[0].SameAs(t[1]) && t[1].SameAs(t[2]));
        Assert.Equal(7 * 9 / 255f, t[0, 1, 1].item<float>(), 5);
    }

    [SkippableFact]
    public void SharedGreyscaleIdentityPhotosDecodeAsRgb()
    {
        string dir = TestPaths.Data("identities", "amy");
        var listing = ImageFolder.List(dir);
        Assert.NotEmpty(listing.Images);
        using var t = ImageIO.Read(listing.Images[0]);
        Assert.Equal(3, t.shape[0]);
        Assert.True(t[0].SameAs(t[2]));
    }

    [Fact]
    public void AlphaIsDroppedKeepingTheUnpremultipliedColour()
    {
        using var scope = NewDisposeScope();
        using var bmp = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var px = bmp.GetPixelSpan();
        byte[] rgba = [200, 100, 50, 0, 10, 20, 30, 128];
        rgba.CopyTo(px);
        string path = Path.Combine(TestPaths.NewTempDir(), "alpha.png");
        using (var data = SKImage.FromBitmap(bmp).Encode(SKEncodedImageFormat.Png, 100))
            File.WriteAllBytes(path, data.ToArray());
        var t = ImageIO.Read(path);
        Assert.Equal(new long[] { 3, 1, 2 }, t.shape);
        Assert.Equal(new[] { 10 / 255f, 20 / 255f, 30 / 255f }, t[.., 0, 1].data<float>().ToArray());
        // A fully transparent pixel keeps what PNG stored; Skia stores premultiplied-zero colour as 0.
        Assert.True(t[.., 0, 0].max().item<float>() <= 200 / 255f);
    }

    /// <summary>Inserts an EXIF APP1 segment with the given orientation right after the JPEG SOI marker.</summary>
    internal static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] tiff =
        [
            (byte)'I',
            (byte)'I',
            42,
            0,
            8,
            0,
            0,
            0, // little-endian TIFF header, IFD at 8
            1,
            0, // one entry
            0x12,
            0x01,
            3,
            0,
            1,
            0,
            0,
            0, // tag 0x0112 Orientation, SHORT, count 1
            (byte)orientation,
            0,
            0,
            0, // value
            0,
            0,
            0,
            0, // no next IFD
        ];
        byte[] exif = [.. "Exif\0\0"u8.ToArray(), .. tiff];
        int len = exif.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(len >> 8), (byte)(len & 0xFF), .. exif];
        return [.. jpeg[..2], .. app1, .. jpeg[2..]];
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(6)]
    [InlineData(8)]
    public void ExifOrientationIsHonoured(int orientation)
    {
        using var scope = NewDisposeScope();
        // 32 wide, 16 high: left half red, right half blue; a green square marks the top-left corner.
        var img = zeros(3, 16, 32);
        img[0, .., ..16] = 1;
        img[2, .., 16..] = 1;
        img[.., ..8, ..8] = 0;
        img[1, ..8, ..8] = 1;
        byte[] jpeg = WithExifOrientation(ImageIO.Encode(img, ImageFormat.Jpeg, 98), (ushort)orientation);
        var t = ImageIO.Decode(jpeg, "oriented.jpg");
        static string Colour(Tensor px) =>
            px.argmax().item<long>() switch
            {
                0 => "red",
                1 => "green",
                _ => "blue",
            };
        string At(int y, int x) => Colour(t[.., y, x]);
        switch (orientation)
        {
            case 1:
                Assert.Equal(new long[] { 3, 16, 32 }, t.shape);
                Assert.Equal("green", At(2, 2));
                Assert.Equal("red", At(12, 12));
                Assert.Equal("blue", At(8, 28));
                break;
            case 3: // rotated 180: green bottom-right, blue on the left
                Assert.Equal(new long[] { 3, 16, 32 }, t.shape);
                Assert.Equal("green", At(13, 29));
                Assert.Equal("blue", At(8, 3));
                Assert.Equal("red", At(3, 20));
                break;
            case 6: // displayed after 90 degrees clockwise: the left (red) half becomes the top, green top-right
                Assert.Equal(new long[] { 3, 32, 16 }, t.shape);
                Assert.Equal("green", At(2, 13));
                Assert.Equal("red", At(12, 3));
                Assert.Equal("blue", At(28, 8));
                break;
            case 8: // 90 degrees counter-clockwise: red at the bottom, green bottom-left
                Assert.Equal(new long[] { 3, 32, 16 }, t.shape);
                Assert.Equal("green", At(29, 2));
                Assert.Equal("red", At(20, 12));
                Assert.Equal("blue", At(3, 8));
                break;
        }
    }

    [Fact]
    public void CorruptTruncatedOversizedAndMissingFilesRaiseTypedErrorsNamingTheFile()
    {
        string dir = TestPaths.NewTempDir();
        string corrupt = Path.Combine(dir, "corrupt.png");
        File.WriteAllBytes(corrupt, Enumerable.Range(0, 500).Select(i => (byte)(i * 31 % 251)).ToArray());
        var e = Assert.Throws<ImageDecodeException>(() => ImageIO.Read(corrupt));
        Assert.Equal(ImageProblem.Unreadable, e.Problem);
        Assert.StartsWith(corrupt, e.Message);

        using var big = torch.rand(3, 64, 64);
        byte[] png = ImageIO.Encode(big);
        string truncated = Path.Combine(dir, "truncated.png");
        File.WriteAllBytes(truncated, png[..(png.Length / 2)]);
        e = Assert.Throws<ImageDecodeException>(() => ImageIO.Read(truncated));
        Assert.Equal(ImageProblem.Truncated, e.Problem);
        Assert.Contains(truncated, e.Message);

        string ok = Path.Combine(dir, "ok.png");
        File.WriteAllBytes(ok, png);
        e = Assert.Throws<ImageDecodeException>(() => ImageIO.Read(ok, maxPixels: 1000));
        Assert.Equal(ImageProblem.TooLarge, e.Problem);
        Assert.Contains("64x64", e.Message);

        string empty = Path.Combine(dir, "empty.jpg");
        File.WriteAllBytes(empty, []);
        Assert.Equal(ImageProblem.Unreadable, Assert.Throws<ImageDecodeException>(() => ImageIO.Read(empty)).Problem);

        e = Assert.Throws<ImageDecodeException>(() => ImageIO.Read(Path.Combine(dir, "absent.png")));
        Assert.Equal(ImageProblem.Missing, e.Problem);
    }

    [Fact]
    public void FolderListingSkipsNonImagesAndCountsThem()
    {
        string dir = TestPaths.NewTempDir();
        using var img = torch.rand(3, 8, 8);
        ImageIO.Write(Path.Combine(dir, "b.png"), img);
        ImageIO.Write(Path.Combine(dir, "a.JPG"), img);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "x");
        File.WriteAllText(Path.Combine(dir, ".hidden.png"), "x");
        var listing = ImageFolder.List(dir);
        Assert.Equal(new[] { "a.JPG", "b.png" }, listing.Images.Select(Path.GetFileName));
        Assert.Equal(2, listing.Skipped.Count);
        Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.List(Path.Combine(dir, "nope")));
    }

    [SkippableFact]
    public void RealPhotosDecode()
    {
        string dir = TestPaths.Data("photos-unaligned");
        var listing = ImageFolder.List(dir);
        Assert.Equal(7, listing.Images.Count);
        foreach (var f in listing.Images)
        {
            using var t = ImageIO.Read(f);
            Assert.Equal(3, t.shape[0]);
            Assert.True(t.min().item<float>() >= 0 && t.max().item<float>() <= 1);
            Assert.True(t.std().item<float>() > 0.05, $"{f} decoded to a flat image");
        }
    }

    [Fact]
    public void ResizeFiltersAndNoOpAtTargetSize()
    {
        using var scope = NewDisposeScope();
        var img = Gradient(40, 60);
        Assert.Equal(new long[] { 3, 20, 30 }, ImageOps.Resize(img, 20, 30, ResizeFilter.Area).shape);
        Assert.Equal(
            new long[] { 2, 3, 80, 90 },
            ImageOps.Resize(img.unsqueeze(0).expand(2, -1, -1, -1), 80, 90, ImageOps.ParseFilter("bicubic")).shape
        );
        // Area halving equals 2x2 averaging.
        var area = ImageOps.Resize(img, 20, 30, ResizeFilter.Area);
        var manual = img.view(3, 20, 2, 30, 2).mean([2, 4]);
        Assert.True((area - manual).abs().max().item<float>() < 1e-6f);
        // Nearest doubling repeats pixels.
        var near = ImageOps.Resize(img, 80, 120, ResizeFilter.Nearest);
        Assert.True(near[.., 1, 3].SameAs(img[.., 0, 1]));
        // Same size: no resampling.
        Assert.True(ImageOps.Resize(img, 40, 60, ResizeFilter.Bicubic).SameAs(img));
        Assert.Throws<ArgumentException>(() => ImageOps.ParseFilter("sinc"));
    }

    [Fact]
    public void GridPlacesCellsAndLabelsWidenIt()
    {
        using var scope = NewDisposeScope();
        var batch = stack(Enumerable.Range(0, 5).Select(i => full(3, 10, 12, i / 4f)).ToArray());
        var grid = ImageGrid.Compose(batch, columns: 3, new GridLayout { Padding = 2, Background = 1f });
        Assert.Equal(new long[] { 3, 2 * 12 + 2, 3 * 14 + 2 }, grid.shape);
        Assert.Equal(0.25f, grid[0, 2 + 5, 2 + 14 + 6].item<float>()); // cell 1 (row 0, col 1)
        Assert.Equal(1f, grid[0, 2 + 12 + 5, 2 + 2 * 14 + 6].item<float>()); // empty 6th cell is background
        Assert.Equal(1f, grid[1, 2 + 12 + 5, 2 + 14 + 6].item<float>()); // cell 4 = 4/4

        var cells = new List<Tensor?> { null, full(3, 10, 12, 0.5f), full(3, 20, 24, 0f), null };
        var labelled = ImageGrid.Compose(
            cells,
            2,
            2,
            new GridLayout { RowLabels = ["", "identity A"], ColumnLabels = ["", "attr B"] }
        );
        Assert.True(labelled.shape[1] > 2 * 12 + 2 && labelled.shape[2] > 2 * 14 + 2);
        // Label text is drawn: the label band is not uniformly background.
        var band = labelled[.., ..((int)labelled.shape[1] - 26), ..];
        Assert.True(band.min().item<float>() < 0.5f);
        string path = Path.Combine(TestPaths.NewTempDir(), "grid.png");
        ImageIO.Write(path, labelled);
        Assert.True(new FileInfo(path).Length > 100);
    }

    /// <summary>A tiny PNG declaring 50,000 x 50,000 pixels is refused from its header, quickly, without decoding.</summary>
    [Fact]
    public void APixelBombIsRefusedFromItsHeader()
    {
        string bomb = TestPaths.TestData("bombs", "png_50000x50000.png");
        // CPU time, not the wall clock: a loaded CI machine stretches the latter; decoding would keep this thread busy.
        var started = Fuzzing.ThreadCpuTime.Now();
        var e = Assert.Throws<ImageDecodeException>(() => ImageIO.Read(bomb));
        var busy = Fuzzing.ThreadCpuTime.Now() - started;
        Assert.Contains("50000x50000", e.Message);
        Assert.Contains(bomb, e.Message);
        Assert.True(busy.TotalSeconds < 5, $"took {busy.TotalSeconds:F1} s of CPU time");
    }
}
