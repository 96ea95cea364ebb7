using IdDisentangle.IO;

namespace IdDisentangle.Tests;

public class NpyTests
{
    static double[] Base => Enumerable.Range(0, 24).Select(i => i * 0.5 - 3.0).ToArray();

    [Theory]
    [InlineData("f4.npy", ScalarType.Float32)]
    [InlineData("f2.npy", ScalarType.Float16)]
    [InlineData("f8.npy", ScalarType.Float64)]
    [InlineData("f4_fortran.npy", ScalarType.Float32)]
    [InlineData("f4_bigendian.npy", ScalarType.Float32)]
    [InlineData("f4_v2.npy", ScalarType.Float32)]
    public void ReadsNumpyWrittenFloatFiles(string file, ScalarType type)
    {
        using var t = Npy.Read(TestPaths.TestData("npy", file));
        Assert.Equal(type, t.dtype);
        Assert.Equal(new long[] { 2, 3, 4 }, t.shape);
        var values = t.to(ScalarType.Float64).flatten().data<double>().ToArray();
        Assert.Equal(Base, values);
        Assert.Equal(-3.0 + 0.5 * (1 * 12 + 2 * 4 + 3), t[1, 2, 3].to(ScalarType.Float64).item<double>());
    }

    [Fact]
    public void ReadsNumpyWrittenIntegerAndBoolFiles()
    {
        using var u1 = Npy.Read(TestPaths.TestData("npy", "u1.npy"));
        Assert.Equal(ScalarType.Byte, u1.dtype);
        Assert.Equal(Enumerable.Range(0, 24).Select(i => (byte)(i * 10 % 256)), u1.flatten().data<byte>().ToArray());

        using var i8 = Npy.Read(TestPaths.TestData("npy", "i8.npy"));
        Assert.Equal(ScalarType.Int64, i8.dtype);
        Assert.Equal(
            Enumerable.Range(0, 24).Select(i => (i - 12) * 1_000_000_000_000L),
            i8.flatten().data<long>().ToArray()
        );

        using var i4 = Npy.Read(TestPaths.TestData("npy", "i4.npy"));
        Assert.Equal(Enumerable.Range(0, 24).Select(i => i - 12), i4.flatten().data<int>().ToArray());

        using var b1 = Npy.Read(TestPaths.TestData("npy", "b1.npy"));
        Assert.Equal(Enumerable.Range(0, 24).Select(i => i % 3 == 0), b1.flatten().data<bool>().ToArray());
    }

    [Fact]
    public void ReadsScalarAndEmptyArrays()
    {
        using var s = Npy.Read(TestPaths.TestData("npy", "f4_scalar.npy"));
        Assert.Empty(s.shape);
        Assert.Equal(2.5f, s.item<float>());
        using var e = Npy.Read(TestPaths.TestData("npy", "f4_empty.npy"));
        Assert.Equal(new long[] { 0, 3 }, e.shape);
    }

    [Theory]
    [InlineData(ScalarType.Float32, 0)]
    [InlineData(ScalarType.Float16, 0)]
    [InlineData(ScalarType.Float64, 0)]
    [InlineData(ScalarType.Byte, 0)]
    [InlineData(ScalarType.Int64, 0)]
    [InlineData(ScalarType.Float32, 2)]
    public void RoundTripsEveryDtype(ScalarType type, int version)
    {
        using var scope = NewDisposeScope();
        var t = (arange(60, dtype: ScalarType.Float64).reshape(3, 4, 5) * 1.25 - 7).to(type);
        if (type == ScalarType.Byte)
            t = arange(60, dtype: ScalarType.Int64).reshape(3, 4, 5).mul(4).to(ScalarType.Byte);
        string path = Path.Combine(TestPaths.NewTempDir(), "x.npy");
        Npy.Write(path, t.permute(2, 0, 1), version); // a non-contiguous view must be written in logical order
        var back = Npy.Read(path);
        Assert.Equal(type, back.dtype);
        Assert.Equal(new long[] { 5, 3, 4 }, back.shape);
        Assert.True(back.SameAs(t.permute(2, 0, 1).contiguous()));
        var h = Npy.ReadHeader(path);
        Assert.Equal(version == 0 ? 1 : version, h.MajorVersion);
        Assert.Equal(0, h.DataOffset % 64); // numpy aligns the data to 64 bytes
    }

    [SkippableFact]
    public void ReadsSharedFixturesWrittenByNumpy()
    {
        using var z = Npy.Read(TestPaths.Fixture("stylegan2", "z.npy"));
        Assert.Equal(new long[] { 4, 512 }, z.shape);
        Assert.Equal(ScalarType.Float32, z.dtype);
        double std = z.std().item<float>();
        Assert.InRange(std, 0.9, 1.1); // z ~ N(0,1)

        using var faces = Npy.Read(TestPaths.Fixture("faceapi", "recognition_input_150.npy"));
        Assert.Equal(ScalarType.Byte, faces.dtype);
        Assert.Equal(4, faces.dim());
        Assert.Equal(new long[] { 150, 150, 3 }, faces.shape[1..]);

        string wdir = TestPaths.Data("stylegan2-fake-256", "ws", "00000");
        string wfile = Directory.EnumerateFiles(wdir, "*.npy").Order().First();
        using var w = Npy.Read(wfile);
        Assert.Equal(new long[] { 18, 512 }, w.shape);
        // shared/README.md says every row is the same w; the files actually hold two codes: rows 0-7 one
        // (truncated, psi applied with a layer cutoff of 8) and rows 8-17 another. Row 0 is what training reads.
        for (int r = 1; r < 8; r++)
            Assert.True(w[r].SameAs(w[0]));
        for (int r = 9; r < 18; r++)
            Assert.True(w[r].SameAs(w[8]));
        Assert.False(w[0].SameAs(w[8]));
    }

    [Fact]
    public void BadFilesAreNamedInTheError()
    {
        string dir = TestPaths.NewTempDir();
        string notNpy = Path.Combine(dir, "text.npy");
        File.WriteAllText(notNpy, "hello world, this is not numpy");
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(notNpy));
        Assert.Contains(notNpy, e.Message);

        string truncated = Path.Combine(dir, "short.npy");
        var full = File.ReadAllBytes(TestPaths.TestData("npy", "f8.npy"));
        File.WriteAllBytes(truncated, full[..(full.Length - 10)]);
        e = Assert.Throws<NpyFormatException>(() => Npy.Read(truncated));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(truncated, e.Message);

        string complex = Path.Combine(dir, "complex.npy");
        var bytes = File.ReadAllBytes(TestPaths.TestData("npy", "f8.npy"));
        var text = System.Text.Encoding.Latin1.GetString(bytes).Replace("'<f8'", "'<c8'");
        File.WriteAllBytes(complex, System.Text.Encoding.Latin1.GetBytes(text));
        e = Assert.Throws<NpyFormatException>(() => Npy.Read(complex));
        Assert.Contains("<c8", e.Message);

        Assert.Throws<FileNotFoundException>(() => Npy.Read(Path.Combine(dir, "absent.npy")));
    }
}
