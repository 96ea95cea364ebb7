using IdDisentangle.Data;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class DatasetTests
{
    static string Generator => TestPaths.TestData("stylegan2-alt", "generator_legacy.pt");

    [Fact]
    public void SameIndexGivesTheSameFilesWhateverTheBatchSizeOrShard()
    {
        using var g = StyleGan2Weights.Load(Generator, out _);
        string a = TestPaths.NewTempDir(),
            b = TestPaths.NewTempDir();
        DatasetGenerator.Generate(
            g,
            new DatasetGenerationOptions
            {
                OutDir = a,
                NumImages = 7,
                BatchSize = 3,
                Seed = 5,
            }
        );
        for (int i = 0; i < 3; i++)
            DatasetGenerator.Generate(
                g,
                new DatasetGenerationOptions
                {
                    OutDir = b,
                    NumImages = 7,
                    BatchSize = 2,
                    Seed = 5,
                    Shard = new Shard(i, 3),
                }
            );
        var la = new DatasetLayout(a);
        var lb = new DatasetLayout(b);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), la.Indices());
        Assert.Equal(la.Indices(), lb.Indices());
        for (long k = 0; k < 7; k++)
        {
            Assert.Equal(File.ReadAllBytes(la.ImagePath(k)), File.ReadAllBytes(lb.ImagePath(k)));
            Assert.Equal(File.ReadAllBytes(la.WPath(k)), File.ReadAllBytes(lb.WPath(k)));
        }
        // Different seeds give different codes.
        string c = TestPaths.NewTempDir();
        DatasetGenerator.Generate(
            g,
            new DatasetGenerationOptions
            {
                OutDir = c,
                NumImages = 1,
                Seed = 6,
            }
        );
        Assert.NotEqual(File.ReadAllBytes(la.WPath(0)), File.ReadAllBytes(new DatasetLayout(c).WPath(0)));
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
        var expected = g.Truncate(g.Map(DatasetGenerator.ZFor(1, 1, g.StyleDim)), 0.7)[0];
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
