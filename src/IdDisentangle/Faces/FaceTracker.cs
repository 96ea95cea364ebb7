using IdDisentangle.Imaging;

namespace IdDisentangle.Faces;

/// <summary>
/// The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) over a vector: a low-pass filter whose cut-off rises with
/// the speed of the signal, so a still face loses its jitter and a moving one does not lag. Speeds are measured in
/// units of <c>scale</c> per second (the face's size), so one setting serves small and large faces.
/// </summary>
internal sealed class OneEuroFilter(double minCutoff, double beta, double derivativeCutoff = 1.0)
{
    double[]? _x,
        _dx;

    static double Alpha(double cutoff, double dt)
    {
        double tau = 1 / (2 * Math.PI * cutoff);
        return 1 / (1 + tau / dt);
    }

    public double[] Filter(double[] value, double dt, double scale)
    {
        if (_x is null || _dx is null || _x.Length != value.Length)
        {
            _x = (double[])value.Clone();
            _dx = new double[value.Length];
            return (double[])_x.Clone();
        }
        double aD = Alpha(derivativeCutoff, dt);
        double squares = 0;
        for (int i = 0; i < value.Length; i++)
        {
            double d = (value[i] - _x[i]) / dt / scale;
            _dx[i] = aD * d + (1 - aD) * _dx[i];
            squares += _dx[i] * _dx[i];
        }
        // One cut-off for the whole face, from the RMS speed of its points: the landmarks move together, and the
        // RMS is not raised by the noise of a single point as a maximum would be.
        double speed = Math.Sqrt(squares / value.Length);
        double a = Alpha(minCutoff + beta * speed, dt);
        for (int i = 0; i < value.Length; i++)
            _x[i] = a * value[i] + (1 - a) * _x[i];
        return (double[])_x.Clone();
    }
}

/// <summary>How faces are followed from frame to frame.</summary>
internal sealed record TrackingOptions
{
    /// <summary>Follow every face; otherwise only the largest of each frame.</summary>
    public bool AllFaces { get; init; }

    /// <summary>Smooth the landmarks (and so the alignment square and the mask) with a One Euro filter.</summary>
    public bool SmoothLandmarks { get; init; } = true;

    /// <summary>The filter's cut-off for a still face, in Hz.</summary>
    public double MinCutoff { get; init; } = 1.0;

    /// <summary>How fast the cut-off rises with speed (per face size per second).</summary>
    public double Beta { get; init; } = 4.0;

    /// <summary>A detection further than this fraction of the face's size from where a face was is another
    /// face (or a cut).</summary>
    public double MaxJump { get; init; } = 0.5;

    /// <summary>Frames a face may go undetected before its track (and its smoothing) is dropped.</summary>
    public int MaxMissedFrames { get; init; } = 5;
}

/// <summary>A face in one frame: its track, the detection, and the (smoothed) landmarks to place it by.</summary>
internal sealed record TrackedFace(int TrackId, DetectedFace Detection, IReadOnlyList<PixelPoint> Landmarks);

/// <summary>
/// Follows faces through the frames of a video by position: each detection continues the nearest track that is
/// close enough, others start tracks; a track not seen for a few frames ends. Each track smooths its landmarks.
/// </summary>
internal sealed class FaceTracker(TrackingOptions options)
{
    sealed class Track(int id, OneEuroFilter filter)
    {
        public int Id { get; } = id;
        public OneEuroFilter Filter { get; } = filter;
        public FaceBox Box { get; set; }
        public int Missed { get; set; }
    }

    readonly List<Track> _tracks = [];
    int _nextId;

    /// <summary>The tracks alive after the last frame.</summary>
    public IReadOnlyList<int> TrackIds => _tracks.Select(t => t.Id).ToList();

    /// <summary>The faces of the next frame (<paramref name="dt"/> seconds after the previous one), largest
    /// first.</summary>
    public IReadOnlyList<TrackedFace> Update(IReadOnlyList<DetectedFace> detections, double dt)
    {
        var faces = detections.OrderByDescending(d => d.Box.Area).ToList();
        if (!options.AllFaces)
            faces = faces.Take(1).ToList();
        var result = new List<TrackedFace>();
        var matched = new HashSet<Track>();
        foreach (var face in faces)
        {
            var track = _tracks
                .Where(t => !matched.Contains(t))
                .Select(t => (Track: t, Distance: Distance(t.Box, face.Box)))
                .Where(x => x.Distance <= options.MaxJump)
                .OrderBy(x => x.Distance)
                .Select(x => x.Track)
                .FirstOrDefault();
            if (track is null)
            {
                if (!options.AllFaces)
                    _tracks.Clear(); // one face: a jump is a cut, and the old smoothing must not carry over
                track = new Track(_nextId++, new OneEuroFilter(options.MinCutoff, options.Beta));
                _tracks.Add(track);
            }
            matched.Add(track);
            track.Box = face.Box;
            track.Missed = 0;
            result.Add(new TrackedFace(track.Id, face, Smooth(track, face, dt)));
        }
        foreach (var t in _tracks.Where(t => !matched.Contains(t)))
            t.Missed++;
        _tracks.RemoveAll(t => t.Missed > options.MaxMissedFrames);
        return result;
    }

    IReadOnlyList<PixelPoint> Smooth(Track track, DetectedFace face, double dt)
    {
        if (!options.SmoothLandmarks)
            return face.Landmarks;
        var flat = face.Landmarks.SelectMany(p => new[] { p.X, p.Y }).ToArray();
        double size = Math.Max(1, Math.Sqrt(face.Box.Area));
        var smooth = track.Filter.Filter(flat, dt, size);
        return Enumerable
            .Range(0, face.Landmarks.Count)
            .Select(i => new PixelPoint(smooth[2 * i], smooth[2 * i + 1]))
            .ToList();
    }

    /// <summary>Centre distance in units of the earlier box's size.</summary>
    static double Distance(FaceBox a, FaceBox b)
    {
        double dx = (a.X + a.Width / 2) - (b.X + b.Width / 2),
            dy = (a.Y + a.Height / 2) - (b.Y + b.Height / 2);
        return Math.Sqrt(dx * dx + dy * dy) / Math.Max(1, Math.Sqrt(a.Area));
    }
}
