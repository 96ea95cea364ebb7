using IdDisentangle.Data;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class DatasetTests
{
    // The 64-px fixture: its batch-1 and batch-2 kernels round differently, which the tests below rely on.
    static string Generator => TestPaths.Fixture("stylegan2", "generator.pt");

    static string Generate(int batchSize, Shard? shard = null, string? dir = null, long seed = 5, long count = 7)
    {
        using var g = StyleGan2Weights.Load(Generator, out _);
        dir ??= TestPaths.NewTempDir();
        DatasetGenerator.Generate(
            g,
            new DatasetGenerationOptions
            {
                OutDir = dir,
                NumImages = count,
                BatchSize = batchSize,
                Seed = seed,
                Shard = shard ?? Shard.Whole,
            }
        );
        return dir;
    }

    /// <summary>
    /// Shards cut the blocks of the whole job (7 images in blocks of 3: shard 1 of 3 owns 2 and 3, one in each of
    /// the first two blocks), and still write the bytes of the whole job.
    /// </summary>
    [Fact]
    public void ShardsWriteTheSameFilesAsTheWholeJob()
    {
        var whole = new DatasetLayout(Generate(3));
        string dir = TestPaths.NewTempDir();
        for (int i = 0; i < 3; i++)
            Generate(3, new Shard(i, 3), dir);
        var sharded = new DatasetLayout(dir);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), whole.Indices());
        Assert.Equal(whole.Indices(), sharded.Indices());
        for (long k = 0; k < 7; k++)
        {
            Assert.Equal(File.ReadAllBytes(whole.ImagePath(k)), File.ReadAllBytes(sharded.ImagePath(k)));
            Assert.Equal(File.ReadAllBytes(whole.WPath(k)), File.ReadAllBytes(sharded.WPath(k)));
        }
        Assert.NotEqual(
            File.ReadAllBytes(whole.WPath(0)),
            File.ReadAllBytes(new DatasetLayout(Generate(3, seed: 6, count: 1)).WPath(0))
        );
    }

    /// <summary>Another batch size changes only the rounding: the codes to float precision, the images by at most
    /// one 8-bit level.</summary>
    [Fact]
    public void AnotherBatchSizeGivesTheSameImagesToRounding()
    {
        var three = new DatasetLayout(Generate(3));
        var two = new DatasetLayout(Generate(2));
        using var scope = NewDisposeScope();
        for (long k = 0; k < 7; k++)
        {
            Assert.True(TensorAssert.MaxAbsDiff(Npy.Read(three.WPath(k)), Npy.Read(two.WPath(k))) < 1e-5f, $"w {k}");
            var a = Imaging.ImageIO.Read(three.ImagePath(k));
            var b = Imaging.ImageIO.Read(two.ImagePath(k));
            Assert.True(TensorAssert.MaxAbsDiff(a, b) <= 1.01f / 255, $"image {k}");
        }
    }

    /// <summary>A job stopped part-way through a block resumes with that block rendered whole, so the index it
    /// lacked gets the bytes an uninterrupted job gives (the batch-1 kernels round differently).</summary>
    [Fact]
    public void AResumedJobRendersTheBlockItStoppedIn()
    {
        var straight = new DatasetLayout(Generate(2));
        string dir = Generate(2);
        var resumed = new DatasetLayout(dir);
        foreach (long k in new long[] { 3, 4, 5, 6 })
        {
            File.Delete(resumed.ImagePath(k));
            File.Delete(resumed.WPath(k));
        }
        Generate(2, dir: dir);
        for (long k = 0; k < 7; k++)
        {
            Assert.Equal(File.ReadAllBytes(straight.ImagePath(k)), File.ReadAllBytes(resumed.ImagePath(k)));
            Assert.Equal(File.ReadAllBytes(straight.WPath(k)), File.ReadAllBytes(resumed.WPath(k)));
        }
    }

    [Fact]
    public void CodesAreTruncatedWPlusWithEveryRowEqual()
    {
        using var g = StyleGan2Weights.Load(Generator, out _);
        string dir = TestPaths.NewTempDir();
        DatasetGenerator.Generate(
            g,
            new DatasetGenerationOptions
            {
                OutDir = dir,
                NumImages = 2,
                Seed = 1,
                Truncation = 0.7,
            }
        );
        using var scope = NewDisposeScope();
        var w = Npy.Read(new DatasetLayout(dir).WPath(1));
        Assert.Equal(new long[] { g.NumLatents, g.StyleDim }, w.shape);
        Assert.True(w[0].SameAs(w[^1]));
        using var noGrad = no_grad();
        // Mapped in the batch the job rendered (indices 0 and 1), so to the same rounding.
        var z = cat([DatasetGenerator.ZFor(1, 0, g.StyleDim), DatasetGenerator.ZFor(1, 1, g.StyleDim)], 0);
        var expected = g.Truncate(g.Map(z), 0.7)[1];
        Assert.True(TensorAssert.MaxAbsDiff(w[0], expected) < 1e-6f);
    }

    [Fact]
    public void ShardsCoverEveryIndexOnce()
    {
        for (int n = 1; n <= 7; n++)
        {
            var covered = Enumerable
                .Range(0, n)
                .SelectMany(i =>
                {
                    var (s, e) = new Shard(i, n).Range(23);
                    return Enumerable.Range((int)s, (int)(e - s));
                })
                .ToList();
            Assert.Equal(Enumerable.Range(0, 23), covered);
        }
        Assert.Equal(Setting.Shard, Assert.Throws<SettingException>(() => Shard.Parse("3/3")).Setting);
        Assert.Equal(new Shard(2, 5), Shard.Parse("2/5"));
    }

    [Fact]
    public void ResumeKeepsCompleteFilesAndRewritesMissingOnes()
    {
        using var g = StyleGan2Weights.Load(Generator, out _);
        string dir = TestPaths.NewTempDir();
        var layout = new DatasetLayout(dir);
        var options = new DatasetGenerationOptions
        {
            OutDir = dir,
            NumImages = 5,
            Seed = 2,
        };
        Assert.Equal(5, DatasetGenerator.Generate(g, options));
        var stamp = File.GetLastWriteTimeUtc(layout.ImagePath(0));
        byte[] image3 = File.ReadAllBytes(layout.ImagePath(3));
        File.Delete(layout.ImagePath(3)); // an interrupted index: code written, image not
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(layout.ImagePath(4))!, ".00004.png.123.tmp"), "partial");
        var seen = new List<(long, bool)>();
        Assert.Equal(1, DatasetGenerator.Generate(g, options, (k, wrote) => seen.Add((k, wrote))));
        Assert.Equal(image3, File.ReadAllBytes(layout.ImagePath(3)));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(layout.ImagePath(0)));
        Assert.Contains((3L, true), seen);
        Assert.Equal(4, seen.Count(p => !p.Item2));
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }
}
