// Independent reference for IdDisentangle's port of dlib's shape predictor: dlib itself (Debian's libdlib-dev).
//   dlib_reference MODEL.dat detect IMAGE...           faces found by dlib's frontal face detector with one upsampling
//                                                      (the FFHQ script's call), largest first, with their landmarks
//   dlib_reference MODEL.dat predict IMAGE L T R B     landmarks for a given box (dlib rectangle, inclusive corners)
//   dlib_reference MODEL.dat predict-list              the same for lines "IMAGE L T R B" on standard input
// Build: g++ -O2 -std=c++17 dlib_reference.cpp -o dlib_reference $(pkg-config --libs dlib-1)
// Prints one JSON object per image: {"file":..., "faces":[{"box":[l,t,r,b],"points":[[x,y],...68]}]}
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_io.h>
#include <iostream>
#include <algorithm>
using namespace dlib;

static void print_face(const rectangle& r, const full_object_detection& s, bool last)
{
    std::cout << "{\"box\":[" << r.left() << "," << r.top() << "," << r.right() << "," << r.bottom() << "],\"points\":[";
    for (unsigned long i = 0; i < s.num_parts(); ++i)
        std::cout << (i ? "," : "") << "[" << s.part(i).x() << "," << s.part(i).y() << "]";
    std::cout << "]}" << (last ? "" : ",");
}

int main(int argc, char** argv)
{
    if (argc < 3) { std::cerr << "usage: dlib_reference MODEL.dat detect IMAGE... | predict IMAGE L T R B\n"; return 2; }
    shape_predictor sp;
    deserialize(argv[1]) >> sp;
    std::string mode = argv[2];
    if (mode == "predict-list")
    {
        // lines "IMAGE L T R B" on standard input
        std::string file; long l, t, r, b;
        while (std::cin >> file >> l >> t >> r >> b)
        {
            array2d<rgb_pixel> img;
            load_image(img, file);
            rectangle box(l, t, r, b);
            std::cout << "{\"file\":\"" << file << "\",\"faces\":[";
            print_face(box, sp(img, box), true);
            std::cout << "]}\n";
        }
        return 0;
    }
    if (mode == "predict")
    {
        array2d<rgb_pixel> img;
        load_image(img, argv[3]);
        rectangle r(std::stol(argv[4]), std::stol(argv[5]), std::stol(argv[6]), std::stol(argv[7]));
        std::cout << "{\"file\":\"" << argv[3] << "\",\"faces\":[";
        print_face(r, sp(img, r), true);
        std::cout << "]}\n";
        return 0;
    }
    frontal_face_detector detector = get_frontal_face_detector();
    for (int a = 3; a < argc; ++a)
    {
        array2d<rgb_pixel> img;
        load_image(img, argv[a]);
        // dlib's Python API, detector(img, 1) as the FFHQ script calls it: the image upsampled once by pyramid_up,
        // detection at threshold 0, rectangles mapped back down (rounded). In C++, detector(img, 1) would instead
        // raise the threshold by 1.
        pyramid_down<2> pyr;
        array2d<rgb_pixel> up;
        pyramid_up(img, up, pyr);
        std::vector<rectangle> dets;
        for (const rectangle& r : detector(up)) dets.push_back(pyr.rect_down(r));
        std::stable_sort(dets.begin(), dets.end(), [](const rectangle& x, const rectangle& y) { return x.area() > y.area(); });
        std::cout << "{\"file\":\"" << argv[a] << "\",\"faces\":[";
        for (size_t i = 0; i < dets.size(); ++i) print_face(dets[i], sp(img, dets[i]), i + 1 == dets.size());
        std::cout << "]}\n";
    }
    return 0;
}
