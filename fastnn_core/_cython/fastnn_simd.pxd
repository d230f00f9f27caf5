# The C row kernels of fastnn_simd.h, declared once for every extension that calls them.

cimport numpy as cnp

ctypedef cnp.npy_intp intp

cdef extern from "fastnn_simd.h" nogil:
    int fnn_max_threads()
    const char *fnn_simd_info()
    int fnn_set_isa(int level)
    int FNN_HAVE_CLONES
    int FASTNN_OPENMP

    void fnn_softmax_rows_f32(const float *z, float *out, intp i0, intp i1, intp C, int mode)
    void fnn_softmax_rows_f64(const double *z, double *out, intp i0, intp i1, intp C, int mode)
    double fnn_ce_hard_rows_f32(const float *z, float *g, intp i0, intp i1, intp C,
                                const intp *labels, const float *sw, const float *w, double W,
                                double eps, double scale, float *rl)
    double fnn_ce_hard_rows_f64(const double *z, double *g, intp i0, intp i1, intp C,
                                const intp *labels, const double *sw, const double *w, double W,
                                double eps, double scale, double *rl)
    double fnn_ce_soft_row_f32(const float *z, const float *t, float *g, intp C,
                               const float *w, double eps, double si, double scale)
    double fnn_ce_soft_row_f64(const double *z, const double *t, double *g, intp C,
                               const double *w, double eps, double si, double scale)
    double fnn_bce_row_f32(const float *z, const float *y, float *g, intp k, double si,
                           double scale)
    double fnn_bce_row_f64(const double *z, const double *y, double *g, intp k, double si,
                           double scale)
    double fnn_sqerr_row_f32(const float *z, const float *y, float *g, intp k, int act,
                             double si, double scale)
    double fnn_sqerr_row_f64(const double *z, const double *y, double *g, intp k, int act,
                             double si, double scale)
    void fnn_activation_f32(int act, const float *z, float *out, intp n)
    void fnn_activation_f64(int act, const double *z, double *out, intp n)
    void fnn_activation_grad_f32(int act, const float *a, const float *u, float *out, intp n)
    void fnn_activation_grad_f64(int act, const double *a, const double *u, double *out, intp n)
    void fnn_sgd_f32(float *p, const float *g, float *v, intp n, float lr, float mom,
                     int nesterov, float l2)
    void fnn_sgd_f64(double *p, const double *g, double *v, intp n, double lr, double mom,
                     int nesterov, double l2)
    void fnn_adam_f32(float *p, const float *g, float *m, float *v, intp n, float lr_t,
                      double b1, double b2, float eps, float l2)
    void fnn_adam_f64(double *p, const double *g, double *m, double *v, intp n, double lr_t,
                      double b1, double b2, double eps, double l2)
    void fnn_adagrad_f32(float *p, const float *g, float *acc, intp n, float lr, float eps,
                         float l2)
    void fnn_adagrad_f64(double *p, const double *g, double *acc, intp n, double lr,
                         double eps, double l2)
    void fnn_rmsprop_f32(float *p, const float *g, float *sq, intp n, float lr, double rho,
                         float eps, float l2)
    void fnn_rmsprop_f64(double *p, const double *g, double *sq, intp n, double lr,
                         double rho, double eps, double l2)
    void fnn_adadelta_f32(float *p, const float *g, float *ag, float *ad, intp n, float lr,
                          double rho, float eps, float l2)
    void fnn_adadelta_f64(double *p, const double *g, double *ag, double *ad, intp n,
                          double lr, double rho, double eps, double l2)
    int fnn_exp_array_f32(const float *x, float *y, intp n, int isa)
    int fnn_exp_array_f64(const double *x, double *y, intp n, int isa)
    int fnn_sqrt_nr_array_f32(const float *x, float *y, intp n)
    int fnn_sqrt_nr_array_f64(const double *x, double *y, intp n)
