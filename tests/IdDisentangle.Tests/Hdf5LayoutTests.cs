using IdDisentangle.Weights;
using Xunit;

namespace IdDisentangle.Tests;

/// <summary>
/// The structure walk that runs before PureHDF (<see cref="Hdf5Precheck"/>) on the storage layouts h5py writes
/// (TestData/hdf5-layouts/make_layouts.py): what Keras and h5py's default format use loads with h5py's values; what
/// the walk cannot follow is refused in one line naming the file, not passed to PureHDF unchecked.
/// </summary>
public class Hdf5LayoutTests
{
    static string Layout(string name) => TestPaths.TestData("hdf5-layouts", name);

    [Theory]
    [InlineData("earliest.h5", 3)] // h5py's default: version 1 object headers, symbol tables
    [InlineData("latest.h5", 3)] // libver="latest": version 2 object headers, compact links
    [InlineData("latest_chunked.h5", 3)]
    [InlineData("chunked.h5", 3)] // chunk B-trees
    [InlineData("gzip.h5", 3)] // DEFLATE chunks, each stored size checked against the file
    [InlineData("vlen.h5", 3)] // variable-length strings in global heaps
    [InlineData("trackorder.h5", 3)]
    [InlineData("fill.h5", 3)] // fill values, enumeration, compound and array attributes
    [InlineData("latest_fill.h5", 3)]
    [InlineData("committed.h5", 3)] // an attribute of a committed (shared) datatype
    public void LayoutsH5pyWritesLoadWithTheirValues(string file, int layers)
    {
        var h5 = KerasHdf5File.Read(Layout(file));
        Assert.Equal(layers, h5.WeightedLayers.Count());
        foreach (var (layer, i) in h5.WeightedLayers.Select((l, i) => (l, i)))
        {
            var weights = layer.Weights.ToDictionary(w => w.Name.Split('/')[1], w => w.Value);
            Assert.Equal([3L, 4L], weights["kernel:0"].shape);
            Assert.Equal(
                Enumerable.Range(0, 12).Select(v => (float)(v + i)),
                weights["kernel:0"].data<float>().ToArray()
            );
            Assert.Equal(Enumerable.Repeat((float)i, 4), weights["bias:0"].data<float>().ToArray());
            foreach (var w in weights.Values)
                w.Dispose();
        }
    }

    [Theory]
    [InlineData("latest_many.h5", "dense link storage")] // 20 links in one group: a fractal heap
    [InlineData("bigattrs.h5", "dense attribute storage")]
    [InlineData("softlink.h5", "an external link")]
    public void WhatTheWalkCannotFollowIsRefusedNamingTheFile(string file, string what)
    {
        string path = Layout(file);
        var e = Assert.Throws<InvalidDataException>(() => KerasHdf5File.Read(path));
        Assert.StartsWith(path, e.Message);
        Assert.True(e.Message.Contains(what), e.Message);
        Assert.Contains("at byte", e.Message);
    }

    /// <summary>earliest.h5 with its layer_names attribute claiming 0x60000000 elements in a 56-byte message:
    /// PureHDF 2.2 would allocate 1 GiB parsing the root's header (the Int32 cast of the claim); the walk refuses it
    /// first.</summary>
    [Fact]
    public void AnAttributeClaimingMoreThanItsMessageIsRefusedBeforePureHdfAllocates()
    {
        string path = Layout("attribute_bomb.h5");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => KerasHdf5File.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.StartsWith(path, e.Message);
        Assert.True(e.Message.Contains("an attribute claiming"), e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated");
    }

    /// <summary>The inputs fuzzing found that made PureHDF allocate 1-1.5 GiB for an attribute (once allowed as a
    /// known gap): refused now by the walk, before PureHDF runs, with little allocated.</summary>
    [Theory]
    [InlineData("88c96f93243f13fb.h5")]
    [InlineData("2297651ec8a8bd23.h5")]
    public void FoundAttributeBombsAreRefusedBeforePureHdfAllocates(string file)
    {
        string path = Path.Combine(TestPaths.RepoRoot, "tests", "fuzz", "regressions", "keras-h5", file);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => KerasHdf5File.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.StartsWith(path, e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated");
    }
}
